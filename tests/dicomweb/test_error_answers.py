"""Every kind of error a DICOMweb view raises gets its answer from one table (apps.dicomweb.errors):
JSON `{code, detail}` with its status and the headers that status needs, through real HTTP."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings

from apps.dicomweb.errors import error_answer
from apps.storage.backends import StorageUnavailable
from tests.support.dicomweb import ct_study, instance_path, multipart_body, stow

UNKNOWN_STUDY = "1.2.826.0.1.3680043.8.498.999999999999"


@pytest.fixture(scope="module")
def stored(platform):
    """One single-frame CT instance in clinic A."""
    study = ct_study(1)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    return study




def _reader(platform):
    return platform.http("clinic_a", "referring_physician")


# --- domain errors: their own code and status -------------------------------------------------------------


def test_a_study_not_in_the_archive_is_404_not_found_ps3_18_10_4(platform):
    answer = _reader(platform).get(f"/dicomweb/studies/{UNKNOWN_STUDY}/metadata")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"code": "not_found", "detail": "No study here."}


def test_a_search_within_a_study_not_in_the_archive_is_404_study_not_found_ps3_18_10_6(platform):
    answer = _reader(platform).get(f"/dicomweb/studies/{UNKNOWN_STUDY}/series", headers={"Accept": "application/dicom+json"})
    assert answer.status_code == 404
    assert answer.json() == {"code": "study_not_found", "detail": "No such study in this archive."}


def test_a_wrong_method_is_405_with_allow_rfc_9110_15_5_6(platform):
    answer = platform.http("clinic_a", "clinic_admin").put("/dicomweb/studies")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert answer.json() == {"code": "method_not_allowed", "detail": "PUT is not supported on this resource."}


def test_no_token_is_401_with_a_bearer_challenge_rfc_6750_3(platform):
    answer = platform.http("clinic_a").get("/dicomweb/studies")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="imaging-cloud"'
    assert answer.json() == {"code": "not_authenticated", "detail": "Send 'Authorization: Bearer <token>'."}


def test_a_role_the_method_does_not_admit_is_403_permission_denied(platform, stored):
    answer = _reader(platform).delete(f"/dicomweb/studies/{stored.study_instance_uid}")
    assert answer.status_code == 403
    assert answer.json() == {"code": "permission_denied", "detail": "Your role may not do this."}


def test_a_malformed_frame_list_is_400_invalid_frame_list(platform, stored):
    answer = _reader(platform).get(f"{instance_path(stored)}/frames/0")
    assert answer.status_code == 400
    assert answer.json() == {"code": "invalid_frame_list",
                             "detail": "Frame numbers are 1-based integers separated by commas."}


def test_a_stow_body_over_the_limit_is_413_payload_too_large(platform, stored, monkeypatch):
    monkeypatch.setattr(settings, "STOW_MAX_BODY_BYTES", 10)
    answer = stow(platform.http("clinic_a", "technologist"), stored.files)
    assert answer.status_code == 413
    assert answer.json() == {"code": "payload_too_large", "detail": "The request body is larger than the 10 bytes accepted."}


def test_a_stow_that_is_not_multipart_is_415_unsupported_media_type_ps3_18_10_5(platform):
    answer = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 415
    assert answer.json() == {"code": "unsupported_media_type",
                             "detail": "Send multipart/related; type=\"application/dicom\" (PS3.18 §10.5.1)."}


def test_a_chunked_stow_the_server_cannot_dechunk_is_411_length_required(platform, stored):
    body, content_type = multipart_body(stored.files)
    answer = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=iter([body]), headers={"Content-Type": content_type}
    )
    assert answer.status_code == 411
    assert answer.json()["code"] == "length_required"


# --- the DICOM core's plain exceptions: the table gives their code and status -----------------------------


def test_a_representation_nothing_can_produce_is_406_not_acceptable_ps3_18_8_3_3(platform, stored):
    answer = _reader(platform).get(f"/dicomweb/studies/{stored.study_instance_uid}/metadata", headers={"Accept": "image/png"})
    assert answer.status_code == 406
    assert answer.json() == {"code": "not_acceptable",
                             "detail": "Metadata is application/dicom+json or application/dicom+xml."}


def test_a_frame_the_instance_lacks_is_404_frame_not_found(platform, stored):
    answer = _reader(platform).get(f"{instance_path(stored)}/frames/2")
    assert answer.status_code == 404
    assert answer.json()["code"] == "frame_not_found"


def test_a_rendering_parameter_out_of_range_is_400_invalid_rendering_parameter_ps3_18_8_3_5(platform, stored):
    answer = _reader(platform).get(f"{instance_path(stored)}/rendered", params={"quality": "0"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_rendering_parameter"


def test_a_malformed_query_is_400_invalid_query_ps3_18_8_3_4(platform):
    answer = _reader(platform).get("/dicomweb/studies", params={"limit": "many"},
                                   headers={"Accept": "application/dicom+json"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_query"


def test_a_boundary_rfc_2046_refuses_is_400_with_the_multipart_errors_own_code(platform, stored):
    boundary = "b" * 71
    body, _ = multipart_body(stored.files, boundary=boundary)
    answer = platform.http("clinic_a", "technologist").post(
        "/dicomweb/studies", data=body,
        headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_boundary"
    assert answer.json()["detail"].endswith(" (RFC 2046 §5.1.1); nothing was stored.")


# --- dependencies that do not answer: 503 to retry ---------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_object_storage_not_answering_is_503_with_retry_after(platform, stored, monkeypatch):
    monkeypatch.setattr(settings, "S3_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    answer = _reader(platform).get(f"{instance_path(stored)}/frames/1")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.json()["code"] == "service_unavailable"


def test_a_dependency_error_a_service_raises_is_503_with_retry_after_and_its_own_code():
    """StorageUnavailable is a DomainError; before the table it was answered 503 without Retry-After."""
    answer = error_answer(StorageUnavailable("S3 bucket imaging-cloud is not reachable"))
    assert answer is not None
    assert answer.status_code == 503
    assert answer["Retry-After"] == str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    assert answer["Cache-Control"] == "no-store"
    assert answer.content == b'{"code": "storage_unavailable", "detail": "S3 bucket imaging-cloud is not reachable"}'


def test_a_fault_is_not_answered_by_the_table():
    assert error_answer(KeyError("a bug")) is None
