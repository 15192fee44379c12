"""Malformed DICOMweb input gets an answer in PS3.18's own form, never a 500 or an HTML page:
a JSON `{code, detail}` 4xx for a request that cannot be understood, a failed instance (0xC000) in
the STOW-RS response for one part that cannot be, while the other parts are stored."""

from __future__ import annotations

import uuid

import pytest

from tests.factories.dicom_factory import to_part10_bytes, with_nested_sequences
from tests.support.dicomweb import (
    DICOM_JSON,
    ct_study,
    failures,
    multipart_body,
    qido,
    referenced_uids,
    stow,
)

CANNOT_UNDERSTAND = 0xC000


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]


# --- QIDO-RS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/studies", "PatientName"),
        ("/studies", "PatientID"),
        ("/studies", "StudyDescription"),
        ("/studies", "AccessionNumber"),
        ("/studies", "ReferringPhysicianName"),
        ("/studies", "StudyID"),
        ("/studies", "ModalitiesInStudy"),
        ("/series", "Modality"),
        ("/series", "SeriesDescription"),
        ("/instances", "SOPClassUID"),
    ],
)
def test_a_nul_character_in_a_qido_text_filter_answers_400(platform, path, key):
    response = qido(platform.http("clinic_a", "referring_physician"), path, {key: "AB\x00CD"})

    assert_json_error(response, 400, "invalid_query")
    assert key in response.json()["detail"]


def test_a_nul_character_in_a_qido_wild_card_filter_answers_400(platform):
    response = qido(platform.http("clinic_a", "referring_physician"), "/studies", {"PatientName": "DOE*\x00"})

    assert_json_error(response, 400, "invalid_query")


@pytest.mark.parametrize(
    "value",
    ["20201345", "20200230", "2020-13-45", "2020-02-30", "20200101-20201345", "-20200230", "20200230-"],
)
def test_an_impossible_date_in_qido_date_matching_answers_400(platform, value):
    response = qido(platform.http("clinic_a", "referring_physician"), "/studies", {"StudyDate": value})

    assert_json_error(response, 400, "invalid_query")
    assert "StudyDate" in response.json()["detail"]


@pytest.mark.parametrize("value", ["256000", "126000", "12:61", "99"])
def test_an_impossible_time_in_qido_time_matching_answers_400(platform, value):
    response = qido(platform.http("clinic_a", "referring_physician"), "/studies", {"StudyTime": value})

    assert_json_error(response, 400, "invalid_query")


def test_the_series_of_an_unknown_study_answer_404(platform):
    unknown = f"2.25.{uuid.uuid4().int}"

    response = qido(platform.http("clinic_a", "referring_physician"), f"/studies/{unknown}/series")

    assert_json_error(response, 404, "study_not_found")


def test_the_instances_of_an_unknown_study_answer_404(platform):
    unknown = f"2.25.{uuid.uuid4().int}"

    response = qido(platform.http("clinic_a", "referring_physician"), f"/studies/{unknown}/instances")

    assert_json_error(response, 404, "study_not_found")


def test_the_series_of_a_known_study_still_answer_200(platform):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(1)
    assert stow(http, study.files).status_code == 200

    response = qido(http, f"/studies/{study.study_instance_uid}/series")

    assert response.status_code == 200
    assert [item["0020000E"]["Value"][0] for item in response.json()] == study.series_instance_uids


# --- STOW-RS ------------------------------------------------------------------------------------------


def test_a_multipart_boundary_over_70_characters_answers_400(platform):
    study = ct_study(1)
    body, content_type = multipart_body(study.files, boundary="b" * 71)

    response = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=body, headers={"Content-Type": content_type, "Accept": DICOM_JSON},
    )

    assert_json_error(response, 400, "invalid_boundary")
    assert "70" in response.json()["detail"]


def test_a_multipart_boundary_of_70_characters_is_accepted(platform):
    study = ct_study(1)
    body, content_type = multipart_body(study.files, boundary="b" * 70)

    response = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=body, headers={"Content-Type": content_type, "Accept": DICOM_JSON},
    )

    assert response.status_code == 200, response.text


def test_one_instance_with_sequences_nested_too_deep_fails_alone_with_c000(platform):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(3)
    deep = with_nested_sequences(study.files[1], 5000)

    response = stow(http, [study.files[0], deep, study.files[2]])

    assert response.status_code == 202, response.text
    assert failures(response) == [(study.sop_instance_uids[1], CANNOT_UNDERSTAND)]
    assert sorted(referenced_uids(response)) == sorted([study.sop_instance_uids[0], study.sop_instance_uids[2]])


def test_sequences_nested_just_over_the_limit_fail_with_c000(platform):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(1)

    response = stow(http, [with_nested_sequences(study.files[0], 65)])

    assert response.status_code == 409, response.text
    assert failures(response) == [(study.sop_instance_uids[0], CANNOT_UNDERSTAND)]
    assert "nested" in response.headers["Warning"]


def test_sequences_nested_up_to_the_limit_are_stored(platform):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(1)

    response = stow(http, [with_nested_sequences(study.files[0], 64)])

    assert response.status_code == 200, response.text
    assert referenced_uids(response) == study.sop_instance_uids


def test_an_instance_with_a_nul_character_in_an_indexed_text_fails_alone_with_c000(platform):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(2)
    study.datasets[0].StudyDescription = "CHEST\x00CT"
    response = stow(http, [to_part10_bytes(study.datasets[0]), study.files[1]])

    assert response.status_code == 202, response.text
    assert failures(response) == [(study.sop_instance_uids[0], CANNOT_UNDERSTAND)]
    assert referenced_uids(response) == [study.sop_instance_uids[1]]
