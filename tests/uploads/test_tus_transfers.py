"""Resumable transfers into an upload session over tus 1.0.0 (https://tus.io/protocols/resumable-upload,
core protocol with creation, termination and checksum; docs/uploads.md): the server keeps the offset,
a dropped PATCH keeps what arrived, the client resumes from HEAD's Upload-Offset, and the finished
file is ingested byte for byte like a plain upload."""

from __future__ import annotations

import base64
import hashlib
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.support.dicomweb import ct_study
from tests.support.platform import wait_until
from tests.uploads.test_upload_sessions import finish_and_wait, open_session, zip_of

TUS = {"Tus-Resumable": "1.0.0"}
PIECE = {**TUS, "Content-Type": "application/offset+octet-stream"}


def metadata(name: str) -> str:
    return f"filename {base64.b64encode(name.encode()).decode()},filetype {base64.b64encode(b'application/dicom').decode()}"


def create(http, session_id, name, length):
    return http.post(f"/api/v1/uploads/{session_id}/tus/",
                     headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata(name)})


def transfer_path(response) -> str:
    assert response.status_code == 201, response.text
    return urlsplit(response.headers["Location"]).path


def patch(http, path, offset, body, **headers):
    return http.patch(path, data=body, headers={**PIECE, "Upload-Offset": str(offset), **headers})


def server_offset(http, path) -> int:
    response = http.head(path, headers=TUS)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return int(response.headers["Upload-Offset"])


def stored_instance_bytes(platform, sop_instance_uid: str) -> bytes:
    from apps.archive.models import Instance
    from apps.storage.tenant_storage import storage_for
    from tenants.context import current_tenant

    with platform.schema("clinic_a"):
        instance = Instance.objects.get(sop_instance_uid=sop_instance_uid)
        return storage_for(current_tenant()).get_bytes(instance.object_key)


def send_headers_then_drop(platform, path: str, offset: int, declared: int, body: bytes) -> None:
    """A PATCH whose connection drops after `body`, before the `declared` length arrived."""
    split = urlsplit(platform.base_url)
    with socket.create_connection((split.hostname, split.port)) as connection:
        head = (f"PATCH {path} HTTP/1.1\r\nHost: {platform.host('clinic_a')}\r\n"
                f"Authorization: Bearer {platform.tokens[('clinic_a', 'technologist')]}\r\n"
                f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Upload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n")
        connection.sendall(head.encode() + body)
        connection.shutdown(socket.SHUT_WR)


def test_options_announce_the_version_extensions_and_size_limit(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    response = http.options(f"/api/v1/uploads/{session['id']}/tus/")
    assert response.status_code == 204
    assert (response.headers["Tus-Resumable"], response.headers["Tus-Version"]) == ("1.0.0", "1.0.0")
    assert response.headers["Tus-Extension"] == "creation,termination,checksum"
    assert response.headers["Tus-Max-Size"] == str(settings.UPLOAD_MAX_FILE_BYTES)


def test_a_file_sent_in_pieces_is_ingested_byte_identical(platform, workers):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(2)
    session = open_session(http)
    for index, data in enumerate(study.files):
        path = transfer_path(create(http, session["id"], f"slice{index}.dcm", len(data)))
        assert server_offset(http, path) == 0
        third = len(data) // 3
        for start, end in [(0, third), (third, 2 * third), (2 * third, len(data))]:
            answer = patch(http, path, start, data[start:end])
            assert answer.status_code == 204, answer.text
            assert answer.headers["Upload-Offset"] == str(end)
        assert server_offset(http, path) == len(data)

    done = finish_and_wait(http, session["id"])

    assert (done["files_received"], done["items_stored"], done["items_failed"]) == (2, 2, 0)
    for data, sop_instance_uid in zip(study.files, study.sop_instance_uids, strict=True):
        assert stored_instance_bytes(platform, sop_instance_uid) == data


def test_an_interrupted_patch_keeps_what_arrived_and_the_upload_resumes_from_head(platform, workers):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(1)
    data = study.files[0]
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "slice.dcm", len(data)))
    half = len(data) // 2

    send_headers_then_drop(platform, path, 0, len(data), data[:half])
    offset = wait_until(lambda: server_offset(http, path) or None, timeout=20, message="the partial piece to count")

    assert offset == half
    assert patch(http, path, offset, data[offset:]).headers["Upload-Offset"] == str(len(data))
    done = finish_and_wait(http, session["id"])
    assert done["items_stored"] == 1
    assert stored_instance_bytes(platform, study.sop_instance_uids[0]) == data


def test_a_patch_at_another_offset_is_a_conflict_and_changes_nothing(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "a.dcm", 100))
    assert patch(http, path, 0, b"x" * 40).status_code == 204

    answer = patch(http, path, 10, b"y" * 10)

    assert (answer.status_code, answer.json()["code"]) == (409, "upload_offset_mismatch")
    assert answer.headers["Tus-Resumable"] == "1.0.0"
    assert server_offset(http, path) == 40


def test_a_patch_not_sent_as_offset_octet_stream_is_refused_415(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "a.dcm", 10))

    answer = patch(http, path, 0, b"x" * 10, **{"Content-Type": "application/octet-stream"})

    assert answer.status_code == 415
    assert server_offset(http, path) == 0


def test_a_request_without_tus_resumable_is_refused_412(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    answer = http.post(f"/api/v1/uploads/{session['id']}/tus/", headers={"Upload-Length": "10", "Upload-Metadata": metadata("a.dcm")})
    assert (answer.status_code, answer.json()["code"]) == (412, "tus_version_unsupported")


def test_a_file_over_the_per_file_limit_is_refused_413_at_creation(platform, monkeypatch):
    monkeypatch.setattr(settings, "UPLOAD_MAX_FILE_BYTES", 1000)
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    answer = create(http, session["id"], "big.dcm", 1001)
    assert (answer.status_code, answer.json()["code"]) == (413, "upload_too_large")


def test_a_body_past_the_declared_length_is_refused_413(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "a.dcm", 10))

    answer = patch(http, path, 0, b"x" * 11)

    assert (answer.status_code, answer.json()["code"]) == (413, "upload_too_large")
    assert server_offset(http, path) == 0


def test_a_piece_with_a_wrong_checksum_is_refused_460_and_not_kept(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "a.dcm", 20))
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    right = base64.b64encode(hashlib.sha256(b"x" * 10).digest()).decode()

    assert patch(http, path, 0, b"x" * 10, **{"Upload-Checksum": f"sha256 {wrong}"}).status_code == 460
    assert server_offset(http, path) == 0
    assert patch(http, path, 0, b"x" * 10, **{"Upload-Checksum": f"sha256 {right}"}).status_code == 204
    assert server_offset(http, path) == 10


def test_another_tenants_transfer_url_is_not_found(platform):
    owner = platform.http("clinic_a", "technologist")
    session = open_session(owner)
    path = transfer_path(create(owner, session["id"], "a.dcm", 10))
    stranger = platform.http("clinic_c", "technologist")

    assert stranger.head(path, headers=TUS).status_code == 404
    assert patch(stranger, path, 0, b"x" * 10).status_code == 404
    assert server_offset(owner, path) == 0


def test_a_transfer_id_of_another_session_is_not_found(platform):
    http = platform.http("clinic_a", "technologist")
    first, second = open_session(http), open_session(http)
    path = transfer_path(create(http, first["id"], "a.dcm", 10))
    transfer_id = path.rstrip("/").rsplit("/", 1)[1]
    assert http.head(f"/api/v1/uploads/{second['id']}/tus/{transfer_id}/", headers=TUS).status_code == 404
    assert http.head(f"/api/v1/uploads/{first['id']}/tus/{uuid.uuid4()}/", headers=TUS).status_code == 404


@pytest.mark.parametrize("name", ["../../etc/passwd", "folder/a.dcm", "a\\b.dcm", "a\x00.dcm", "..", "a\n.dcm"])
def test_a_file_name_with_a_path_or_control_characters_is_refused(platform, name):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    answer = create(http, session["id"], name, 10)
    assert (answer.status_code, answer.json()["code"]) == (400, "upload_file_name_invalid")


def test_termination_drops_an_unfinished_transfer(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "a.dcm", 10))
    assert patch(http, path, 0, b"x" * 4).status_code == 204

    assert http.delete(path, headers=TUS).status_code == 204
    assert http.head(path, headers=TUS).status_code == 404


def test_a_zip_sent_over_tus_is_unpacked_and_its_bad_member_reported(platform, workers):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(2)
    archive = zip_of({"a.dcm": study.files[0], "b.dcm": study.files[1], "notes.txt": b"not dicom"})
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "study.zip", len(archive)))
    assert patch(http, path, 0, archive).status_code == 204

    done = finish_and_wait(http, session["id"])

    assert (done["items_stored"], done["items_failed"]) == (2, 1)
    failed = http.get(f"/api/v1/uploads/{session['id']}/items/?status=failed").json()["results"]
    assert [(item["member_name"], item["failure_code"]) for item in failed] == [("notes.txt", "cannot_understand")]


def test_head_reports_the_full_length_only_once_the_file_is_in_the_session(platform):
    from apps.uploads.models import UploadTransfer

    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "a.dcm", 10))
    transfer_id = path.rstrip("/").rsplit("/", 1)[1]
    assert patch(http, path, 0, b"x" * 4).status_code == 204
    with platform.schema("clinic_a"):
        # Another request holds the hand-over claim right after the last byte arrived.
        from django.utils import timezone
        UploadTransfer.objects.filter(pk=transfer_id).update(offset=10, completing_since=timezone.now())

    answer = http.head(path, headers=TUS)

    assert (answer.status_code, answer.headers["Tus-Resumable"]) == (423, "1.0.0")
    assert http.get(f"/api/v1/uploads/{session['id']}/").json()["files_received"] == 0


def test_a_piece_for_a_cancelled_session_is_refused(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    path = transfer_path(create(http, session["id"], "a.dcm", 10))
    assert http.delete(f"/api/v1/uploads/{session['id']}/").status_code == 200  # cancelled meanwhile

    last = patch(http, path, 0, b"x" * 10)

    assert (last.status_code, last.json()["code"]) == (409, "upload_not_open")
