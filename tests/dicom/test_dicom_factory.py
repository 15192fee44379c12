"""The shared DICOM factory builds valid, realistic instances that survive a Part 10 round trip."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    MRImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    RLELossless,
    generate_uid,
)

from tests.factories.dicom_factory import (
    compressed_copy,
    from_part10_bytes,
    make_ct_series,
    make_ct_slice,
    make_dx_image,
    make_mr_image,
    make_multiframe,
    make_secondary_capture,
    to_part10_bytes,
)


def test_a_ct_slice_has_a_ct_image_storage_header_and_survives_part10():
    dataset = make_ct_slice(patient_id="P-42", patient_name="Doe^Jane", accession_number="A-7")
    data = to_part10_bytes(dataset)
    assert data[128:132] == b"DICM"
    back = from_part10_bytes(data)
    assert back.SOPClassUID == CTImageStorage
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert (back.Modality, back.PatientID, str(back.PatientName), back.AccessionNumber) == (
        "CT",
        "P-42",
        "Doe^Jane",
        "A-7",
    )
    assert (back.Rows, back.Columns, back.BitsAllocated, back.BitsStored, back.PixelRepresentation) == (
        512,
        512,
        16,
        16,
        1,
    )
    assert (float(back.RescaleSlope), float(back.RescaleIntercept)) == (1.0, -1024.0)
    assert (float(back.WindowCenter), float(back.WindowWidth)) == (40.0, 400.0)
    assert [float(value) for value in back.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert back.FrameOfReferenceUID and back.StudyInstanceUID and back.SeriesInstanceUID
    assert back.pixel_array.dtype == np.int16
    assert np.array_equal(back.pixel_array, dataset.pixel_array)


def test_ct_pixels_are_hounsfield_units_of_a_chest():
    dataset = make_ct_slice(rows=256, columns=256)
    hounsfield = dataset.pixel_array.astype(float) * float(dataset.RescaleSlope) + float(
        dataset.RescaleIntercept
    )
    assert hounsfield[5, 5] == pytest.approx(-1000, abs=40)  # air outside the body
    assert hounsfield[122, 82] == pytest.approx(-850, abs=40)  # right lung
    assert hounsfield[128, 128 + 10] == pytest.approx(45, abs=40)  # heart
    assert hounsfield[182, 128] == pytest.approx(700, abs=40)  # spine


def test_given_stored_pixels_are_used_exactly():
    pixels = np.arange(16, dtype=np.int16).reshape(4, 4) - 8
    assert np.array_equal(make_ct_slice(rows=4, columns=4, pixels=pixels).pixel_array, pixels)


def test_a_ct_series_shares_study_series_and_frame_of_reference():
    study_uid = generate_uid()
    series = make_ct_series(
        4,
        rows=32,
        columns=32,
        slice_thickness=2.5,
        first_slice_position=-10,
        study_instance_uid=study_uid,
        patient_id="P-1",
    )
    assert {dataset.StudyInstanceUID for dataset in series} == {study_uid}
    assert len({dataset.SeriesInstanceUID for dataset in series}) == 1
    assert len({dataset.FrameOfReferenceUID for dataset in series}) == 1
    assert len({dataset.SOPInstanceUID for dataset in series}) == 4
    assert [dataset.InstanceNumber for dataset in series] == [1, 2, 3, 4]
    assert [float(dataset.ImagePositionPatient[2]) for dataset in series] == [-10.0, -7.5, -5.0, -2.5]
    assert {dataset.PatientID for dataset in series} == {"P-1"}
    assert not np.array_equal(series[0].pixel_array, series[1].pixel_array)


def test_a_ct_series_takes_chosen_instance_uids_but_not_a_single_one():
    uids = [generate_uid() for _ in range(2)]
    series = make_ct_series(2, rows=8, columns=8, sop_instance_uids=uids)
    assert [dataset.SOPInstanceUID for dataset in series] == uids
    with pytest.raises(TypeError, match="sop_instance_uids"):
        make_ct_series(2, rows=8, columns=8, sop_instance_uid=uids[0])


def test_two_calls_without_identifiers_make_unrelated_studies():
    first, second = make_ct_slice(rows=8, columns=8), make_ct_slice(rows=8, columns=8)
    assert first.StudyInstanceUID != second.StudyInstanceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID


def test_unknown_identifier_keywords_are_refused():
    with pytest.raises(TypeError, match="patient_identifier"):
        make_mr_image(patient_identifier="oops")  # type: ignore[call-arg]


def test_an_mr_image_is_unsigned_twelve_bit_mr_image_storage():
    back = from_part10_bytes(to_part10_bytes(make_mr_image(rows=128, columns=128)))
    assert back.SOPClassUID == MRImageStorage
    assert (back.Modality, back.BitsStored, back.PixelRepresentation, back.ScanningSequence) == (
        "MR",
        12,
        0,
        "SE",
    )
    assert back.pixel_array.max() <= 4095
    assert "RescaleSlope" not in back


@pytest.mark.parametrize(("photometric", "shape"), [("MONOCHROME1", "INVERSE"), ("MONOCHROME2", "IDENTITY")])
def test_a_dx_image_declares_its_presentation_lut_shape(photometric, shape):
    back = from_part10_bytes(
        to_part10_bytes(make_dx_image(rows=64, columns=64, photometric_interpretation=photometric))
    )
    assert back.SOPClassUID == DigitalXRayImageStorageForPresentation
    assert (back.PhotometricInterpretation, back.PresentationLUTShape) == (photometric, shape)


def test_monochrome1_dx_pixels_are_the_inverse_of_monochrome2():
    monochrome1 = make_dx_image(rows=64, columns=64, photometric_interpretation="MONOCHROME1").pixel_array
    monochrome2 = make_dx_image(rows=64, columns=64, photometric_interpretation="MONOCHROME2").pixel_array
    assert np.abs(monochrome1.astype(int) + monochrome2.astype(int) - 4095).max() <= 1


def test_a_multiframe_has_distinct_frames_and_survives_part10():
    dataset = make_multiframe(number_of_frames=6, rows=16, columns=24, bits_allocated=16)
    back = from_part10_bytes(to_part10_bytes(dataset))
    assert back.SOPClassUID == MultiFrameGrayscaleWordSecondaryCaptureImageStorage
    assert back.NumberOfFrames == 6
    assert back.pixel_array.shape == (6, 16, 24)
    assert len({back.pixel_array[index].tobytes() for index in range(6)}) == 6


def test_an_rgb_multiframe_is_true_colour_secondary_capture():
    back = from_part10_bytes(
        to_part10_bytes(make_multiframe(number_of_frames=2, photometric_interpretation="RGB"))
    )
    assert back.SOPClassUID == MultiFrameTrueColorSecondaryCaptureImageStorage
    assert back.pixel_array.shape == (2, 64, 64, 3)


def test_a_single_frame_multiframe_still_has_number_of_frames():
    assert make_multiframe(number_of_frames=1, rows=4, columns=4).NumberOfFrames == 1


def test_a_secondary_capture_holds_exactly_the_given_pixels():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    back = from_part10_bytes(to_part10_bytes(make_secondary_capture(rgb)))
    assert back.PhotometricInterpretation == "RGB"
    assert np.array_equal(back.pixel_array, rgb)


def test_a_compressed_copy_keeps_the_instance_and_its_pixels():
    original = make_ct_slice(rows=32, columns=32)
    compressed = from_part10_bytes(to_part10_bytes(compressed_copy(original, RLELossless)))
    assert compressed.file_meta.TransferSyntaxUID == RLELossless
    assert compressed.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(compressed.pixel_array, original.pixel_array)
    assert original.file_meta.TransferSyntaxUID != RLELossless  # the original is untouched
