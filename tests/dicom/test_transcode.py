"""Transcoding to Explicit VR Little Endian and to JPEG 2000, and knowing what can be decoded."""

from __future__ import annotations

import io

import numpy as np
import openjpeg
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from apps.dicom.transcode import (
    TranscodeNotPossible,
    can_decode,
    decode_frame_to_uncompressed,
    encode_frame_jpeg2000,
    transcode_to_explicit_vr_little_endian,
    uncompressed_photometric_interpretation,
)
from tests.factories.dicom_factory import (
    compressed_copy,
    from_part10_bytes,
    make_ct_slice,
    make_multiframe,
    make_secondary_capture,
    to_part10_bytes,
)


def bundled_file_bytes(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None, f"{name} is not bundled with pydicom"
    with open(path, "rb") as file:
        return file.read()


TRANSCODABLE_TEST_FILES = [
    "JPEG2000.dcm",
    "693_J2KI.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "MR_small_jp2klossless.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "JPGExtended.dcm",
    "examples_ybr_color.dcm",
    "JPEGLSNearLossless_16.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_rle_2frame.dcm",
    "rtdose_rle.dcm",
    "MR_small_bigendian.dcm",
    "rtdose_expb.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "MR_small_implicit.dcm",
    "image_dfl.dcm",
]


@pytest.mark.parametrize("name", TRANSCODABLE_TEST_FILES)
def test_transcoded_instance_decodes_to_the_same_pixels_as_the_original(name):
    original_bytes = bundled_file_bytes(name)
    original = pydicom.dcmread(io.BytesIO(original_bytes))
    transcoded = from_part10_bytes(transcode_to_explicit_vr_little_endian(original_bytes))
    assert transcoded.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert transcoded.SOPInstanceUID == original.SOPInstanceUID
    assert transcoded.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert transcoded.PhotometricInterpretation == uncompressed_photometric_interpretation(original)
    assert np.array_equal(transcoded.pixel_array, original.pixel_array)


def test_explicit_vr_little_endian_is_returned_untouched():
    data = to_part10_bytes(make_ct_slice(rows=16, columns=16))
    assert transcode_to_explicit_vr_little_endian(data) is data


def test_a_built_compressed_series_slice_round_trips_through_transcoding():
    original = make_ct_slice(rows=64, columns=64)
    compressed_bytes = to_part10_bytes(compressed_copy(original, RLELossless))
    transcoded = from_part10_bytes(transcode_to_explicit_vr_little_endian(compressed_bytes))
    assert transcoded.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert transcoded.PatientID == original.PatientID
    assert np.array_equal(transcoded.pixel_array, original.pixel_array)


def test_decompressing_lossy_jpeg_records_the_lossy_compression():
    dataset = pydicom.dcmread(io.BytesIO(bundled_file_bytes("SC_rgb_jpeg_dcmtk.dcm")))
    if "LossyImageCompression" in dataset:
        del dataset.LossyImageCompression
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    transcoded = from_part10_bytes(transcode_to_explicit_vr_little_endian(buffer.getvalue()))
    assert transcoded.LossyImageCompression == "01"
    assert transcoded.LossyImageCompressionMethod == "ISO_10918_1"


def test_bytes_that_are_not_dicom_cannot_be_transcoded():
    with pytest.raises(TranscodeNotPossible, match="not a readable DICOM"):
        transcode_to_explicit_vr_little_endian(b"this is not a DICOM file")


def test_pixel_data_without_a_decoder_cannot_be_transcoded():
    dataset = compressed_copy(make_ct_slice(rows=16, columns=16), RLELossless)
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: no decoder here
    with pytest.raises(TranscodeNotPossible, match="cannot be decoded here"):
        transcode_to_explicit_vr_little_endian(to_part10_bytes(dataset))


@pytest.mark.parametrize(
    ("transfer_syntax", "expected"),
    [
        ("1.2.840.10008.1.2", True),
        ("1.2.840.10008.1.2.1", True),
        ("1.2.840.10008.1.2.1.99", True),
        ("1.2.840.10008.1.2.2", True),
        ("1.2.840.10008.1.2.4.50", True),
        ("1.2.840.10008.1.2.4.51", True),
        ("1.2.840.10008.1.2.4.70", True),
        ("1.2.840.10008.1.2.4.80", True),
        ("1.2.840.10008.1.2.4.90", True),
        ("1.2.840.10008.1.2.4.201", True),
        ("1.2.840.10008.1.2.5", True),
        ("1.2.840.10008.1.2.4.100", False),  # MPEG2 video
        ("1.2.840.10008.1.2.4.110", False),  # JPEG XL
        ("1.2.3.4", False),
    ],
)
def test_can_decode_knows_the_installed_decoders(transfer_syntax, expected):
    assert can_decode(transfer_syntax) is expected


def test_compressed_colour_frames_decode_to_rgb_bytes():
    dataset = pydicom.dcmread(io.BytesIO(bundled_file_bytes("examples_ybr_color.dcm")))
    assert uncompressed_photometric_interpretation(dataset) == "RGB"
    data = decode_frame_to_uncompressed(dataset, 5)
    assert data == pydicom.pixels.pixel_array(dataset, index=4).tobytes()
    assert len(data) == 240 * 320 * 3


def test_signed_compressed_frames_decode_to_signed_little_endian_bytes():
    dataset = pydicom.dcmread(io.BytesIO(bundled_file_bytes("MR_small_jp2klossless.dcm")))
    data = decode_frame_to_uncompressed(dataset, 1)
    assert np.array_equal(np.frombuffer(data, "<i2").reshape(64, 64), dataset.pixel_array)


def decode_codestream(codestream: bytes) -> np.ndarray:
    """Decode with OpenJPEG directly, independently of the pydicom path that made the codestream."""
    return openjpeg.decode(codestream)


def test_a_ct_frame_is_encoded_as_lossless_jpeg_2000():
    dataset = from_part10_bytes(to_part10_bytes(make_ct_slice(rows=64, columns=80)))
    frame = encode_frame_jpeg2000(dataset, 1)
    assert frame.media_type == "image/jp2"
    assert frame.transfer_syntax_uid == JPEG2000Lossless
    assert frame.data.startswith(b"\xff\x4f\xff\x51")
    assert np.array_equal(decode_codestream(frame.data), dataset.pixel_array)


def test_an_rgb_frame_of_a_compressed_multiframe_is_encoded_as_lossless_jpeg_2000():
    original = make_multiframe(number_of_frames=3, rows=48, columns=64, photometric_interpretation="RGB")
    compressed = from_part10_bytes(to_part10_bytes(compressed_copy(original, RLELossless)))
    frame = encode_frame_jpeg2000(compressed, 2)
    assert np.array_equal(decode_codestream(frame.data), original.pixel_array[1])


def test_float_pixel_data_is_not_encoded_as_jpeg_2000():
    dataset = make_secondary_capture(np.zeros((4, 4), dtype=np.uint16))
    dataset.FloatPixelData = np.zeros(16, dtype="<f4").tobytes()
    del dataset.PixelData
    with pytest.raises(TranscodeNotPossible, match="float"):
        encode_frame_jpeg2000(dataset, 1)


def test_a_frame_too_small_for_the_jpeg_2000_encoder_is_refused_with_a_reason():
    dataset = make_secondary_capture(np.zeros((16, 64), dtype=np.uint8))
    with pytest.raises(TranscodeNotPossible, match="too small"):
        encode_frame_jpeg2000(dataset, 1)
