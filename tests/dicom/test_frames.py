"""Frame extraction for WADO-RS: compressed frames byte for byte, native frames sliced, right media types."""

from __future__ import annotations

import struct

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate_extended
from pydicom.pixels import pack_bits
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGLSLossless,
    MultiFrameSingleBitSecondaryCaptureImageStorage,
    RLELossless,
    generate_uid,
)

from apps.dicom.transcode import (
    TRANSFER_SYNTAX_MEDIA_TYPES,
    Frame,
    FrameNotFound,
    TranscodeNotPossible,
    decode_frame,
    decode_frame_to_uncompressed,
    extract_frames,
    media_type_for_transfer_syntax,
)
from tests.factories.dicom_factory import (
    compressed_copy,
    from_part10_bytes,
    make_ct_slice,
    make_multiframe,
    to_part10_bytes,
)

ITEM_TAG = b"\xfe\xff\x00\xe0"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0"


def encapsulated_fragments(pixel_data: bytes) -> list[bytes]:
    """The fragments after the Basic Offset Table, read independently of pydicom (PS3.5 §A.4)."""
    fragments = []
    offset = 0
    first = True
    while offset < len(pixel_data):
        tag, length = (
            pixel_data[offset : offset + 4],
            struct.unpack("<I", pixel_data[offset + 4 : offset + 8])[0],
        )
        offset += 8
        if tag == SEQUENCE_DELIMITER:
            break
        assert tag == ITEM_TAG
        if not first:
            fragments.append(pixel_data[offset : offset + length])
        first = False
        offset += length
    return fragments


def read_test_file(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"{name} is not bundled with pydicom"
    return pydicom.dcmread(path)


# Bundled pydicom files (none are downloaded): name, media type, frame count.
COMPRESSED_TEST_FILES = [
    ("JPEG2000.dcm", "image/jp2", 1),
    ("693_J2KI.dcm", "image/jp2", 1),
    ("MR_small_jp2klossless.dcm", "image/jp2", 1),
    ("GDCMJ2K_TextGBR.dcm", "image/jp2", 1),
    ("SC_rgb_jpeg_dcmtk.dcm", "image/jpeg", 1),
    ("SC_rgb_jpeg_gdcm.dcm", "image/jpeg", 1),
    ("JPEG-lossy.dcm", "image/jpeg", 1),
    ("JPGExtended.dcm", "image/jpeg", 1),
    ("examples_ybr_color.dcm", "image/jpeg", 30),
    ("JPEGLSNearLossless_16.dcm", "image/jls", 1),
    ("MR_small_jpeg_ls_lossless.dcm", "image/jls", 1),
    ("MR_small_RLE.dcm", "image/dicom-rle", 1),
    ("SC_rgb_rle.dcm", "image/dicom-rle", 1),
    ("SC_rgb_rle_2frame.dcm", "image/dicom-rle", 2),
    ("rtdose_rle.dcm", "image/dicom-rle", 15),
]

# The first bytes each compressed frame starts with: JPEG SOI, JPEG 2000 SOC+SIZ. GDCM wrote
# GDCMJ2K_TextGBR.dcm with a JP2 file header (PS3.5 §8.2.4 says a bare codestream); it is served as stored.
FRAME_SIGNATURES = {
    "image/jpeg": (b"\xff\xd8",),
    "image/jls": (b"\xff\xd8",),
    "image/jp2": (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  \r\n\x87\n"),
}


@pytest.mark.parametrize(("name", "media_type", "frame_count"), COMPRESSED_TEST_FILES)
def test_compressed_frames_are_the_stored_fragments_with_their_media_type(name, media_type, frame_count):
    dataset = read_test_file(name)
    frames = extract_frames(dataset, list(range(1, frame_count + 1)))
    fragments = encapsulated_fragments(dataset.PixelData)
    assert len(frames) == frame_count
    if len(fragments) == frame_count:
        assert [frame.data for frame in frames] == fragments
    else:  # frames split over several fragments: the frames are the fragments joined in order
        assert b"".join(frame.data for frame in frames) == b"".join(fragments)
    for frame in frames:
        assert frame.media_type == media_type
        assert frame.transfer_syntax_uid == dataset.file_meta.TransferSyntaxUID
        if media_type in FRAME_SIGNATURES:
            assert frame.data.startswith(FRAME_SIGNATURES[media_type])
        if media_type == "image/dicom-rle":  # PS3.5 §G.5: a 64-byte header counting 1..15 segments
            assert 1 <= struct.unpack("<I", frame.data[:4])[0] <= 15


def test_frames_come_back_in_the_order_asked_with_repeats():
    dataset = read_test_file("examples_ybr_color.dcm")
    fragments = encapsulated_fragments(dataset.PixelData)
    frames = extract_frames(dataset, [30, 1, 30, 7])
    assert [frame.data for frame in frames] == [fragments[29], fragments[0], fragments[29], fragments[6]]


def test_a_single_frame_is_found_through_the_extended_offset_table():
    frames = [bytes([index]) * (10 + 2 * index) for index in range(4)]  # even: no item padding
    dataset = make_multiframe(number_of_frames=4, rows=4, columns=4)
    dataset.file_meta.TransferSyntaxUID = RLELossless  # the frame bytes are opaque here
    dataset.PixelData, dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths = encapsulate_extended(
        frames
    )
    dataset["PixelData"].VR = "OB"
    dataset = from_part10_bytes(to_part10_bytes(dataset))
    assert [frame.data for frame in extract_frames(dataset, [3])] == [frames[2]]
    assert [frame.data for frame in extract_frames(dataset, [4, 2])] == [frames[3], frames[1]]


@pytest.mark.parametrize(
    ("transfer_syntax", "media_type"),
    [(RLELossless, "image/dicom-rle"), (JPEG2000Lossless, "image/jp2"), (JPEGLSLossless, "image/jls")],
)
def test_compressed_frames_of_a_built_multiframe_decode_to_the_original_pixels(transfer_syntax, media_type):
    original = make_multiframe(number_of_frames=5, rows=32, columns=48, bits_allocated=16)
    compressed = from_part10_bytes(to_part10_bytes(compressed_copy(original, transfer_syntax)))
    frames = extract_frames(compressed, [1, 5])
    assert {frame.media_type for frame in frames} == {media_type}
    for frame_number in (1, 3, 5):
        decoded = decode_frame(compressed, frame_number)
        assert np.array_equal(decoded.pixels, original.pixel_array[frame_number - 1])
        expected_bytes = original.pixel_array[frame_number - 1].astype("<u2").tobytes()
        assert decode_frame_to_uncompressed(compressed, frame_number) == expected_bytes


def test_native_frames_are_sliced_from_the_pixel_data():
    dataset = read_test_file("rtdose.dcm")  # 15 frames of 10 x 10 32-bit values, Implicit VR
    frame_bytes = 10 * 10 * 4
    frames = extract_frames(dataset, [1, 15, 8])
    assert [frame.data for frame in frames] == [
        dataset.PixelData[0:frame_bytes],
        dataset.PixelData[14 * frame_bytes : 15 * frame_bytes],
        dataset.PixelData[7 * frame_bytes : 8 * frame_bytes],
    ]
    assert all(frame.media_type == "application/octet-stream" for frame in frames)
    assert all(frame.transfer_syntax_uid == "1.2.840.10008.1.2.1" for frame in frames)


def test_a_built_ct_slice_has_one_native_frame_equal_to_its_pixel_data():
    dataset = from_part10_bytes(to_part10_bytes(make_ct_slice(rows=64, columns=64)))
    (frame,) = extract_frames(dataset, [1])
    assert frame == Frame(
        data=dataset.PixelData,
        media_type="application/octet-stream",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    assert np.array_equal(np.frombuffer(frame.data, "<i2").reshape(64, 64), dataset.pixel_array)


def test_big_endian_native_frames_are_sent_little_endian():
    dataset = read_test_file("MR_small_bigendian.dcm")
    (frame,) = extract_frames(dataset, [1])
    assert frame.data == dataset.pixel_array.astype("<i2").tobytes()
    assert decode_frame_to_uncompressed(dataset, 1) == frame.data


def test_native_ybr_full_422_frames_hold_two_samples_per_pixel():
    dataset = read_test_file("SC_ybr_full_422_uncompressed.dcm")
    (frame,) = extract_frames(dataset, [1])
    assert len(frame.data) == 100 * 100 * 2
    assert frame.data == dataset.PixelData[: 100 * 100 * 2]


def test_single_bit_frames_that_do_not_start_on_a_byte_are_repacked():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, size=(3, 3, 5), dtype=np.uint8)  # 15 bits per frame: not byte aligned
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    dataset.SOPClassUID = MultiFrameSingleBitSecondaryCaptureImageStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.Rows, dataset.Columns, dataset.NumberOfFrames = 3, 5, 3
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 1, 1, 0, 0
    dataset.PixelData = pack_bits(bits)
    dataset = from_part10_bytes(to_part10_bytes(dataset))
    frames = extract_frames(dataset, [1, 2, 3])
    for index, frame in enumerate(frames):
        assert frame.data == np.packbits(bits[index].ravel(), bitorder="little").tobytes()
        unpacked = np.unpackbits(np.frombuffer(frame.data, np.uint8), bitorder="little")[:15]
        assert np.array_equal(unpacked.reshape(3, 5), bits[index])


def test_single_bit_byte_aligned_frames_are_sliced():
    dataset = read_test_file("liver_1frame.dcm")  # 512 x 512 x 1 bit
    (frame,) = extract_frames(dataset, [1])
    assert frame.data == dataset.PixelData[: 512 * 512 // 8]


@pytest.mark.parametrize("frame_number", [0, 3, -1])
def test_a_frame_number_outside_the_instance_is_not_found(frame_number):
    dataset = read_test_file("SC_rgb_rle_2frame.dcm")
    with pytest.raises(FrameNotFound, match="does not exist"):
        extract_frames(dataset, [1, frame_number])


def test_an_instance_without_pixel_data_has_no_frames():
    with pytest.raises(FrameNotFound, match="no pixel data"):
        extract_frames(read_test_file("test-SR.dcm"), [1])


def test_frames_cannot_be_cut_out_of_a_video_stream():
    dataset = make_ct_slice(rows=8, columns=8)
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"  # MPEG-4 AVC/H.264
    with pytest.raises(TranscodeNotPossible, match="video stream"):
        extract_frames(dataset, [1])


@pytest.mark.parametrize(
    ("transfer_syntax", "media_type"),
    [
        ("1.2.840.10008.1.2", "application/octet-stream"),
        ("1.2.840.10008.1.2.1", "application/octet-stream"),
        ("1.2.840.10008.1.2.1.99", "application/octet-stream"),
        ("1.2.840.10008.1.2.4.50", "image/jpeg"),
        ("1.2.840.10008.1.2.4.51", "image/jpeg"),
        ("1.2.840.10008.1.2.4.57", "image/jpeg"),
        ("1.2.840.10008.1.2.4.70", "image/jpeg"),
        ("1.2.840.10008.1.2.4.80", "image/jls"),
        ("1.2.840.10008.1.2.4.81", "image/jls"),
        ("1.2.840.10008.1.2.4.90", "image/jp2"),
        ("1.2.840.10008.1.2.4.91", "image/jp2"),
        ("1.2.840.10008.1.2.4.92", "image/jpx"),
        ("1.2.840.10008.1.2.4.201", "image/jphc"),
        ("1.2.840.10008.1.2.4.203", "image/jphc"),
        ("1.2.840.10008.1.2.5", "image/dicom-rle"),
        ("1.2.840.10008.1.2.4.112", "image/jxl"),
        ("1.2.840.10008.1.2.4.100", "video/mpeg"),
        ("1.2.840.10008.1.2.4.102", "video/mp4"),
        ("1.2.840.10008.1.2.4.107", "video/H265"),
    ],
)
def test_transfer_syntaxes_map_to_the_ps3_18_media_types(transfer_syntax, media_type):
    assert TRANSFER_SYNTAX_MEDIA_TYPES[transfer_syntax] == media_type
    assert media_type_for_transfer_syntax(transfer_syntax) == media_type


def test_an_unknown_transfer_syntax_has_no_media_type():
    with pytest.raises(TranscodeNotPossible, match="no DICOMweb media type"):
        media_type_for_transfer_syntax("1.2.3.4.5")
