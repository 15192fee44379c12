"""Instance headers are read without pixel data; incomplete, unreadable or non-conforming files are
refused with the PS3.18 failure reason (0xC000 cannot understand, 0xA900 does not match SOP class)."""

from datetime import date, time

import pytest
from pydicom.uid import RLELossless

from apps.dicom.headers import (
    MAX_SEQUENCE_NESTING,
    InstanceRejected,
    attribute_with_nul,
    index_attributes,
    parse_date,
    parse_time,
    read_instance_header,
)
from apps.dicom.status import FailureReason, WarningReason
from tests.factories.dicom_factory import (
    compressed_copy,
    make_ct_slice,
    make_multiframe,
    to_part10_bytes,
    with_nested_sequences,
)
from tests.support.dicomweb import sample_bytes


def header_of(data: bytes, **options):
    return read_instance_header(data, len(data), **options)


def rejection(data: bytes, **options) -> InstanceRejected:
    with pytest.raises(InstanceRejected) as raised:
        header_of(data, **options)
    return raised.value


def test_the_header_is_read_and_the_pixel_data_located_without_decoding_it():
    dataset = make_ct_slice(rows=32, columns=32, patient_id="P-1", study_date="20250102", study_time="0930",
                            series_number=4, instance_number=7)
    header = header_of(to_part10_bytes(dataset))
    assert "PixelData" not in header.dataset
    assert header.pixel_data.vr == "OW" and not header.pixel_data.encapsulated
    assert header.pixel_data.value_length == 32 * 32 * 2
    attributes = index_attributes(header)
    assert attributes.patient_id == "P-1"
    assert (attributes.study_date, attributes.study_time) == (date(2025, 1, 2), time(9, 30))
    assert (attributes.series_number, attributes.instance_number, attributes.rows) == (4, 7, 32)
    assert attributes.modality == "CT"


def test_encapsulated_pixel_data_is_walked_to_its_delimiter():
    dataset = compressed_copy(make_multiframe(number_of_frames=3), RLELossless)
    header = header_of(to_part10_bytes(dataset))
    assert header.pixel_data.encapsulated
    assert header.transfer_syntax_uid == RLELossless


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm"])
def test_every_transfer_syntax_is_walked(name):
    assert header_of(sample_bytes(name)).pixel_data is not None


def test_bytes_that_are_not_dicom_cannot_be_understood():
    assert rejection(b"%PDF-1.7 not dicom" * 20).reason == FailureReason.CANNOT_UNDERSTAND


def test_a_file_pydicom_reads_only_with_force_cannot_be_understood():
    # A data set without preamble and File Meta Information (PS3.10 §7.1 requires both).
    assert rejection(sample_bytes("no_meta.dcm")).reason == FailureReason.CANNOT_UNDERSTAND


@pytest.mark.parametrize("cut", [0.99, 0.5, 0.2])
def test_a_truncated_file_cannot_be_understood(cut):
    data = to_part10_bytes(make_ct_slice(rows=32, columns=32))
    refused = rejection(data[: int(len(data) * cut)])
    assert refused.reason == FailureReason.CANNOT_UNDERSTAND
    assert "truncated" in refused.detail or "cannot be read" in refused.detail


def test_a_truncated_sequence_cannot_be_understood():
    assert rejection(sample_bytes("rtplan_truncated.dcm")).reason == FailureReason.CANNOT_UNDERSTAND


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_a_missing_identifying_uid_does_not_match_the_sop_class(keyword):
    dataset = make_ct_slice(rows=16, columns=16)
    delattr(dataset, keyword)
    assert rejection(to_part10_bytes(dataset)).reason == FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS


def test_a_uid_with_illegal_characters_cannot_be_understood():
    dataset = make_ct_slice(rows=16, columns=16)
    dataset.SeriesInstanceUID = "1.2.3.abc"
    refused = rejection(to_part10_bytes(dataset))
    assert refused.reason == FailureReason.CANNOT_UNDERSTAND
    assert "SeriesInstanceUID" in refused.detail
    assert refused.sop_instance_uid == dataset.SOPInstanceUID


def test_a_missing_patient_id_is_refused_or_assigned_by_policy():
    dataset = make_ct_slice(rows=16, columns=16)
    del dataset.PatientID
    data = to_part10_bytes(dataset)
    assert rejection(data).reason == FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    header = header_of(data, assign_missing_patient_id=True)
    assert header.patient_id.startswith("NOID-")
    assert header.warnings[0][0] == WarningReason.COERCION_OF_DATA_ELEMENTS
    # Every instance of the study gets the same identifier.
    assert header_of(data, assign_missing_patient_id=True).patient_id == header.patient_id


def test_an_empty_patient_id_is_type_2_and_kept_ps3_3_c_7_1_1():
    dataset = make_ct_slice(rows=16, columns=16)
    dataset.PatientID = ""
    data = to_part10_bytes(dataset)
    assert header_of(data).patient_id == ""
    assert header_of(data).warnings == ()
    assert header_of(data, assign_missing_patient_id=True).patient_id.startswith("NOID-")


def test_an_image_without_pixel_data_does_not_match_its_sop_class():
    dataset = make_ct_slice(rows=16, columns=16)
    del dataset.PixelData
    assert rejection(to_part10_bytes(dataset)).reason == FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS


def test_a_sop_class_differing_from_the_file_meta_does_not_match():
    data = to_part10_bytes(make_ct_slice(rows=16, columns=16))
    # The File Meta Information comes first: patch its Media Storage SOP Class UID (CT → MR).
    data = data.replace(b"1.2.840.10008.5.1.4.1.1.2\x00", b"1.2.840.10008.5.1.4.1.1.4\x00", 1)
    assert rejection(data).reason == FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS


@pytest.mark.parametrize(
    ("text", "expected"), [("20240229", date(2024, 2, 29)), ("2024.02.29", date(2024, 2, 29)), ("20230229", None), ("", None)]
)
def test_dates_parse_or_give_none(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10", time(10)), ("1015", time(10, 15)), ("101530.5", time(10, 15, 30, 500000)), ("10:15:30", time(10, 15, 30)),
     ("2561", None)],
)
def test_times_parse_or_give_none(text, expected):
    assert parse_time(text) == expected


def test_a_file_missing_only_its_preamble_is_recognised():
    from apps.dicom.headers import lacks_only_the_preamble

    data = to_part10_bytes(make_ct_slice(rows=16, columns=16))
    assert lacks_only_the_preamble(data[132:], len(data) - 132)
    assert not lacks_only_the_preamble(data, len(data))
    assert not lacks_only_the_preamble(sample_bytes("no_meta.dcm"), 1000)


def test_sequences_nested_up_to_the_limit_are_read():
    data = with_nested_sequences(to_part10_bytes(make_ct_slice(rows=16, columns=16)), MAX_SEQUENCE_NESTING)
    assert header_of(data).dataset.OriginalAttributesSequence


@pytest.mark.parametrize("depth", [MAX_SEQUENCE_NESTING + 1, 400, 20_000])
def test_sequences_nested_past_the_limit_are_refused_as_cannot_understand_naming_the_instance(depth):
    dataset = make_ct_slice(rows=16, columns=16)
    refused = rejection(with_nested_sequences(to_part10_bytes(dataset), depth))
    assert refused.reason == FailureReason.CANNOT_UNDERSTAND
    assert refused.sop_instance_uid == dataset.SOPInstanceUID
    assert f"nested more than {MAX_SEQUENCE_NESTING} levels" in refused.detail


def test_an_indexed_text_with_a_nul_character_is_named():
    dataset = make_ct_slice(rows=16, columns=16, patient_id="P-1")
    dataset.AccessionNumber = "A\x00B"
    header = header_of(to_part10_bytes(dataset))
    assert attribute_with_nul(index_attributes(header)) == "AccessionNumber"


def test_indexed_texts_without_nul_characters_name_nothing():
    header = header_of(to_part10_bytes(make_ct_slice(rows=16, columns=16, patient_id="P-1")))
    assert attribute_with_nul(index_attributes(header)) is None
