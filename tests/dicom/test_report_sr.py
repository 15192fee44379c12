"""The consult report SR (apps.dicom.report_sr): built from the study's headers, written and read back."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pydicom
from pydicom.uid import ComprehensiveSRStorage

from apps.dicom.report_sr import SignedReport, SrReference, build_report_sr, report_sr_bytes
from tests.factories.dicom_factory import make_ct_series

REPORT = SignedReport(
    findings="A 9 mm solid nodule.", impression="Indeterminate nodule.", recommendations="CT in 3 months.",
    signed_by="radiologist", signed_at=datetime(2026, 11, 30, 9, 15, tzinfo=UTC), institution_name="Hospital B",
    version=1,
)


def _built_and_read_back(source: pydicom.Dataset) -> pydicom.Dataset:
    sr = build_report_sr(report=REPORT, source_datasets=[source], key_image_sop_instance_uids=[],
                         series_instance_uid="1.2.3.4.1", sop_instance_uid="1.2.3.4.1.1")
    return pydicom.dcmread(io.BytesIO(report_sr_bytes(sr)))


def test_a_study_without_study_id_gets_an_sr_with_an_empty_study_id():
    source = make_ct_series(1, rows=16, columns=16)[0]
    del source.StudyID

    sr = _built_and_read_back(source)

    assert "StudyID" in sr
    assert sr.StudyID == ""
    assert sr.StudyInstanceUID == source.StudyInstanceUID


def test_missing_type_2_patient_and_study_attributes_are_carried_as_empty_values():
    source = make_ct_series(1, rows=16, columns=16)[0]
    for keyword in ("AccessionNumber", "StudyDate", "StudyTime", "PatientBirthDate", "PatientSex"):
        if keyword in source:
            delattr(source, keyword)

    sr = _built_and_read_back(source)

    assert [sr[keyword].value in ("", None) for keyword in
            ("AccessionNumber", "StudyDate", "StudyTime", "PatientBirthDate", "PatientSex")] == [True] * 5
    assert sr.PatientID == source.PatientID


def test_building_the_sr_leaves_the_source_header_unchanged():
    source = make_ct_series(1, rows=16, columns=16)[0]
    del source.StudyID

    _built_and_read_back(source)

    assert "StudyID" not in source


def test_a_study_id_present_in_the_source_is_copied():
    source = make_ct_series(1, rows=16, columns=16)[0]
    source.StudyID = "S-42"

    assert _built_and_read_back(source).StudyID == "S-42"


def test_an_addendum_names_the_earlier_versions_srs_as_predecessor_documents():
    """PS3.3 C.17.2.1: the Predecessor Documents Sequence references the SRs this one supersedes."""
    source = make_ct_series(1, rows=16, columns=16)[0]
    addendum = SignedReport(**{**REPORT.__dict__, "version": 2, "is_addendum": True})
    original = SrReference(study_instance_uid=str(source.StudyInstanceUID), series_instance_uid="1.2.3.4.1",
                           sop_instance_uid="1.2.3.4.1.1")

    sr = pydicom.dcmread(io.BytesIO(report_sr_bytes(build_report_sr(
        report=addendum, source_datasets=[source], key_image_sop_instance_uids=[],
        series_instance_uid="1.2.3.4.2", sop_instance_uid="1.2.3.4.2.1", predecessor_documents=[original]))))

    [study] = sr.PredecessorDocumentsSequence
    [series] = study.ReferencedSeriesSequence
    [instance] = series.ReferencedSOPSequence
    assert (study.StudyInstanceUID, series.SeriesInstanceUID, instance.ReferencedSOPInstanceUID,
            instance.ReferencedSOPClassUID) == (source.StudyInstanceUID, "1.2.3.4.1", "1.2.3.4.1.1",
                                                ComprehensiveSRStorage)
    assert sr.SeriesDescription == "Consult report addendum"


def test_an_original_report_has_no_predecessor_documents():
    assert "PredecessorDocumentsSequence" not in _built_and_read_back(make_ct_series(1, rows=16, columns=16)[0])
