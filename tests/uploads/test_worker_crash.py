"""A worker node that crashes while it processes an upload: its whole process group SIGKILLed with
the session half-ingested and the message unacknowledged. A new worker starts; the beat's sweep
sends the stalled session again and it completes, every instance of the zip retrievable byte for
byte. Real processes: private redis-server, web server, relay, beat and workers (tests/support/faults.py)."""

from __future__ import annotations

from apps.audit.models import AuditEvent
from apps.uploads.models import UploadSession, UploadSessionStatus
from tests.support.broker_outage import originals_by_sop_instance_uid
from tests.support.dicomweb import ct_study
from tests.support.faults import table_locked
from tests.support.platform import wait_until
from tests.uploads.test_upload_sessions import open_session, send_file, zip_of

INSTANCES = 40


def session_row(platform, session_id: str) -> UploadSession:
    with platform.schema("clinic_a"):
        return UploadSession.objects.get(pk=session_id)


def test_an_upload_whose_worker_crashed_mid_processing_completes_on_a_new_worker(crash_platform):
    platform = crash_platform.platform
    http = platform.http("clinic_a", "technologist")
    study = ct_study(INSTANCES)
    session = open_session(http)
    archive = zip_of({f"series/{index}.dcm": data for index, data in enumerate(study.files)})
    assert send_file(http, session["id"], "study.zip", archive, "application/zip").status_code == 201
    assert http.post(f"/api/v1/uploads/{session['id']}/finish/").status_code == 202

    wait_until(lambda: session_row(platform, session["id"]).items_stored >= 2, timeout=30,
               interval=0.05, message="the worker to store the first instances of the zip")
    with table_locked(platform, "clinic_a", "archive_instance"):  # the worker waits at its next instance
        caught = session_row(platform, session["id"])
        crash_platform.crash_worker()
    assert caught.status == UploadSessionStatus.PROCESSING
    assert caught.items_stored < INSTANCES

    crash_platform.start_new_worker()
    done = wait_until(lambda: (row := session_row(platform, session["id"])).status != UploadSessionStatus.PROCESSING
                      and row, timeout=45, message="the crashed upload to be resumed and completed")
    assert done.status == UploadSessionStatus.COMPLETED
    assert (done.items_stored, done.items_duplicate, done.items_failed) == (INSTANCES, 0, 0)
    assert originals_by_sop_instance_uid(http, study.datasets) == dict(
        zip(study.sop_instance_uids, study.files, strict=True))
    with platform.schema("clinic_a"):
        assert AuditEvent.objects.filter(action="upload.resume", object_id=session["id"]).exists()
