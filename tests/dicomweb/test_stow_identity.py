"""Patient identity conflicts (docs/dicomweb.md, "Patient identity"): an instance whose Patient ID,
Issuer, Patient Name or Birth Date contradicts the study it names is refused with 0xC410 in the
FailedSOPSequence, the stored study keeps its identity, is flagged with the conflicting values
for quality control, and the refusal is audited."""

from __future__ import annotations

import pytest

from apps.archive.models import Study, StudyIdentityConflict
from apps.archive.selectors import studies_with_identity_conflicts
from apps.audit.models import AuditEvent
from tests.factories.dicom_factory import to_part10_bytes
from tests.support.dicomweb import (
    attribute,
    ct_study,
    failures,
    qido,
    referenced_uids,
    stow,
    unique_patient_id,
)

PATIENT_IDENTITY_CONFLICT = 0xC410
ORIGINAL = {"patient_name": "Doe^Jane", "patient_birth_date": "19700101", "issuer_of_patient_id": "CLINIC-A"}


def stored_study(http, **identity):
    patient_id = unique_patient_id("IDENT")
    study = ct_study(1, patient_id=patient_id, **{**ORIGINAL, **identity})
    assert stow(http, study.files).status_code == 200
    return study


def same_study_other_series(study, **changes):
    identity = {"patient_id": study.patient_id, **ORIGINAL, **changes}
    return ct_study(1, study_instance_uid=study.study_instance_uid, **identity)


def conflicts_of(platform, study_instance_uid):
    with platform.schema("clinic_a"):
        study = Study.objects.get(study_instance_uid=study_instance_uid, deleted_at__isnull=True)
        rows = list(StudyIdentityConflict.objects.filter(study=study).order_by("id"))
        return study, rows


@pytest.mark.parametrize(
    ("changes", "keyword", "stored", "received"),
    [
        ({"patient_id": "OTHER-PATIENT"}, "PatientID", None, "OTHER-PATIENT"),
        ({"patient_name": "Roe^Richard"}, "PatientName", "Doe^Jane", "Roe^Richard"),
        ({"patient_birth_date": "19800202"}, "PatientBirthDate", "19700101", "19800202"),
        ({"issuer_of_patient_id": "HOSPITAL-B"}, "IssuerOfPatientID", "CLINIC-A", "HOSPITAL-B"),
    ],
)
def test_an_instance_contradicting_the_stored_study_identity_is_refused_with_c410(
    platform, changes, keyword, stored, received,
):
    http = platform.http("clinic_a", "technologist")
    study = stored_study(http)
    intruder = same_study_other_series(study, **changes)

    response = stow(http, intruder.files)

    assert response.status_code == 409, response.text
    assert failures(response) == [(intruder.sop_instance_uids[0], PATIENT_IDENTITY_CONFLICT)]
    assert keyword in response.headers["Warning"]
    flagged, rows = conflicts_of(platform, study.study_instance_uid)
    assert flagged.identity_conflict_at is not None
    assert flagged.number_of_instances == 1
    assert [(row.sop_instance_uid, row.via) for row in rows] == [(intruder.sop_instance_uids[0], "stow-rs")]
    assert rows[0].attributes == {keyword: {"stored": stored or study.patient_id, "received": received}}


def test_the_stored_study_keeps_its_identity_after_a_refused_conflict(platform):
    http = platform.http("clinic_a", "technologist")
    study = stored_study(http)
    stow(http, same_study_other_series(study, patient_id="OTHER-PATIENT", patient_name="Roe^Richard").files)

    results = qido(http, "/studies", {"StudyInstanceUID": study.study_instance_uid}).json()

    assert [attribute(item, "00100020") for item in results] == [study.patient_id]
    assert attribute(results[0], "00100010") == {"Alphabetic": "Doe^Jane"}
    assert attribute(results[0], "00201208") == 1


def test_a_refused_identity_conflict_is_audited_with_the_attribute_names_only(platform):
    http = platform.http("clinic_a", "technologist")
    study = stored_study(http)
    intruder = same_study_other_series(study, patient_name="Roe^Richard", patient_birth_date="19800202")

    stow(http, intruder.files)

    with platform.schema("clinic_a"):
        events = list(AuditEvent.objects.filter(action="archive.identity_conflict", object_id=study.study_instance_uid))
    assert len(events) == 1
    assert events[0].outcome == "failure"
    assert events[0].detail == {
        "via": "stow-rs", "refused": 1, "instances": intruder.sop_instance_uids,
        "attributes": ["PatientBirthDate", "PatientName"],
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"patient_name": "DOE^JANE"},  # names match ignoring case, as QIDO-RS matches them
        {"patient_name": "Doe^Jane^^"},  # trailing empty components say nothing more
        {"patient_name": ""},  # an empty value contradicts nothing
        {"patient_birth_date": ""},
        {"issuer_of_patient_id": ""},
    ],
)
def test_an_instance_that_agrees_with_the_study_identity_is_stored_and_flags_nothing(platform, changes):
    http = platform.http("clinic_a", "technologist")
    study = stored_study(http)
    agreeing = same_study_other_series(study, **changes)

    response = stow(http, agreeing.files)

    assert response.status_code == 200, response.text
    flagged, rows = conflicts_of(platform, study.study_instance_uid)
    assert (flagged.identity_conflict_at, rows, flagged.number_of_instances) == (None, [], 2)


def test_within_one_request_a_new_study_takes_the_identity_of_its_first_instance(platform):
    http = platform.http("clinic_a", "technologist")
    first = ct_study(1, patient_id=unique_patient_id("IDENT"), **ORIGINAL)
    contradicting = same_study_other_series(first, patient_name="Roe^Richard")
    agreeing = same_study_other_series(first)

    response = stow(http, [first.files[0], contradicting.files[0], agreeing.files[0]])

    assert response.status_code == 202, response.text
    assert sorted(referenced_uids(response)) == sorted(first.sop_instance_uids + agreeing.sop_instance_uids)
    assert failures(response) == [(contradicting.sop_instance_uids[0], PATIENT_IDENTITY_CONFLICT)]
    flagged, rows = conflicts_of(platform, first.study_instance_uid)
    assert flagged.identity_conflict_at is not None
    assert [row.attributes for row in rows] == [{"PatientName": {"stored": "Doe^Jane", "received": "Roe^Richard"}}]
    with platform.schema("clinic_a"):
        assert studies_with_identity_conflicts().first() == flagged


def test_sending_the_same_instance_again_is_still_a_duplicate_not_a_conflict(platform):
    http = platform.http("clinic_a", "technologist")
    study = stored_study(http)

    response = stow(http, study.files)

    assert response.status_code == 200, response.text
    assert conflicts_of(platform, study.study_instance_uid)[1] == []


def test_an_instance_without_patient_id_given_the_assigned_one_does_not_contradict_its_study(platform, settings):
    settings.ARCHIVE_ASSIGN_MISSING_PATIENT_ID = True
    http = platform.http("clinic_a", "technologist")
    study = stored_study(http)
    anonymous = same_study_other_series(study)
    del anonymous.datasets[0].PatientID

    response = stow(http, [to_part10_bytes(anonymous.datasets[0])])

    assert response.status_code == 202, response.text  # stored, with the B000 warning of the assigned ID
    assert referenced_uids(response) == anonymous.sop_instance_uids
    assert conflicts_of(platform, study.study_instance_uid)[1] == []
