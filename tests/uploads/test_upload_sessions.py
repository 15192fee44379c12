"""Browser and bulk uploads: files and zips go through a session, ingest workers index them,
progress and per-file failures can be read while and after it runs."""

import io
import uuid
import zipfile

from tests.support.dicomweb import ct_study
from tests.support.platform import wait_until

DICOM_BYTES = "application/dicom"


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def open_session(http, **headers):
    response = http.post("/api/v1/uploads/", json={"label": "test"}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def send_file(http, session_id, name, data, content_type=DICOM_BYTES):
    return http.post(f"/api/v1/uploads/{session_id}/files/", files={"file": (name, data, content_type)})


def finish_and_wait(http, session_id):
    response = http.post(f"/api/v1/uploads/{session_id}/finish/")
    assert response.status_code == 202, response.text

    def completed():
        body = http.get(f"/api/v1/uploads/{session_id}/").json()
        return body if body["status"] == "completed" else None

    return wait_until(completed, timeout=90, message=f"upload {session_id} to complete")


def test_files_and_a_zip_are_ingested_and_appear_in_qido(platform, workers):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(4)
    session = open_session(http)
    assert send_file(http, session["id"], "first.dcm", study.files[0]).status_code == 201
    archive = zip_of({f"series/{i}.dcm": data for i, data in enumerate(study.files[1:], start=1)})
    assert send_file(http, session["id"], "rest.zip", archive, "application/zip").status_code == 201

    done = finish_and_wait(http, session["id"])

    assert (done["items_stored"], done["items_duplicate"], done["items_failed"]) == (4, 0, 0)
    assert done["files_done"] == 2 and done["files_pending"] == 0
    found = http.get(f"/dicomweb/studies/{study.study_instance_uid}/instances", headers={"Accept": "application/dicom+json"})
    assert found.status_code == 200
    assert sorted(item["00080018"]["Value"][0] for item in found.json()) == sorted(study.sop_instance_uids)


def test_hostile_zip_members_are_reported_and_the_rest_is_ingested(platform, workers):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(1)
    session = open_session(http)
    archive = zip_of({"../../escape.dcm": study.files[0], "good.dcm": study.files[0], "notes.txt": b"not dicom"})
    send_file(http, session["id"], "mixed.zip", archive, "application/zip")

    done = finish_and_wait(http, session["id"])

    items = {item["member_name"]: item for item in http.get(f"/api/v1/uploads/{session['id']}/items/").json()["results"]}
    assert items["../../escape.dcm"]["status"] == "failed"
    assert items["../../escape.dcm"]["failure_code"] == "path_traversal"
    assert items["good.dcm"]["status"] == "stored"
    assert items["notes.txt"]["status"] == "failed"
    assert (done["items_stored"], done["items_failed"]) == (1, 2)


def test_a_zip_bomb_is_refused_whole_and_nothing_is_indexed(platform, workers):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    send_file(http, session["id"], "bomb.zip", zip_of({"zeros.dcm": b"\0" * (40 * 1024 * 1024)}), "application/zip")

    done = finish_and_wait(http, session["id"])

    files = http.get(f"/api/v1/uploads/{session['id']}/files/").json()["results"]
    assert files[0]["status"] == "refused" and files[0]["error_code"] == "zip_bomb"
    assert done["items_stored"] == 0


def test_the_same_file_twice_is_stored_once_and_reported_as_duplicate(platform, workers):
    http = platform.http("clinic_a", "technologist")
    study = ct_study(1)
    session = open_session(http)
    send_file(http, session["id"], "a.dcm", study.files[0])
    send_file(http, session["id"], "again.dcm", study.files[0])

    done = finish_and_wait(http, session["id"])

    assert (done["items_stored"], done["items_duplicate"]) == (1, 1)


def test_an_idempotency_key_returns_the_same_session(platform):
    http = platform.http("clinic_a", "technologist")
    key = uuid.uuid4().hex
    first = open_session(http, **{"Idempotency-Key": key})
    second = open_session(http, **{"Idempotency-Key": key})
    assert first["id"] == second["id"]


def test_a_finished_session_takes_no_more_files(platform, workers):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    send_file(http, session["id"], "a.dcm", ct_study(1).files[0])
    finish_and_wait(http, session["id"])
    late = send_file(http, session["id"], "late.dcm", ct_study(1).files[0])
    assert late.status_code == 409 and late.json()["code"] == "upload_not_open"


def test_finishing_an_empty_session_is_refused(platform):
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    response = http.post(f"/api/v1/uploads/{session['id']}/finish/")
    assert response.status_code == 400 and response.json()["code"] == "upload_empty"


def test_a_referring_physician_may_not_upload(platform):
    response = platform.http("clinic_a", "referring_physician").post("/api/v1/uploads/", json={})
    assert response.status_code == 403


def test_another_tenants_session_is_invisible(platform):
    owner = platform.http("clinic_a", "technologist")
    session = open_session(owner)
    intruder = platform.http("clinic_c", "clinic_admin")
    assert intruder.get(f"/api/v1/uploads/{session['id']}/").status_code == 404
    assert intruder.post(f"/api/v1/uploads/{session['id']}/files/", files={"file": ("x.dcm", b"x")}).status_code == 404
    on_foreign_domain = platform.http("clinic_c", token=platform.tokens[("clinic_a", "technologist")])
    assert on_foreign_domain.get(f"/api/v1/uploads/{session['id']}/").status_code == 401


def test_an_uploaded_instance_contradicting_its_study_identity_is_refused_and_flags_the_study(platform, workers):
    from apps.archive.models import Study, StudyIdentityConflict

    http = platform.http("clinic_a", "technologist")
    study = ct_study(1, patient_name="Doe^Jane")
    intruder = ct_study(1, study_instance_uid=study.study_instance_uid, patient_id=study.patient_id,
                        patient_name="Roe^Richard")
    session = open_session(http)
    send_file(http, session["id"], "both.zip", zip_of({"a.dcm": study.files[0], "b.dcm": intruder.files[0]}),
              "application/zip")

    done = finish_and_wait(http, session["id"])

    items = {item["member_name"]: item for item in http.get(f"/api/v1/uploads/{session['id']}/items/").json()["results"]}
    assert (done["items_stored"], done["items_failed"]) == (1, 1)
    assert items["a.dcm"]["status"] == "stored"
    assert (items["b.dcm"]["status"], items["b.dcm"]["failure_code"]) == ("failed", "patient_identity_conflict")
    with platform.schema("clinic_a"):
        flagged = Study.objects.get(study_instance_uid=study.study_instance_uid, deleted_at__isnull=True)
        conflicts = list(StudyIdentityConflict.objects.filter(study=flagged).values_list("via", "attributes"))
    assert flagged.identity_conflict_at is not None
    assert conflicts == [("upload", {"PatientName": {"stored": "Doe^Jane", "received": "Roe^Richard"}})]
