"""An upload session whose processing meets a database outage (about 10 s, this test database only:
the shared PostgreSQL server goes on): the worker caught half-way through the zip when every
connection is ended and new ones refused. The processing retries, the session completes once the
database is back, and every instance of the zip is retrievable byte for byte. Real processes:
private redis-server, web server, relay, beat and worker (tests/support/faults.py)."""

from __future__ import annotations

import re

from apps.uploads.models import UploadSession, UploadSessionStatus
from tests.support.broker_outage import originals_by_sop_instance_uid
from tests.support.dicomweb import ct_study
from tests.support.faults import database_out_for, table_locked
from tests.support.platform import wait_until
from tests.uploads.test_upload_sessions import open_session, send_file, zip_of

INSTANCES = 40
OUTAGE_SECONDS = 10
PROCESSING_RETRY = re.compile(r"upload_session_process\[[0-9a-f-]+\] retry: .*(OperationalError|InterfaceError)")


def session_row(platform, session_id: str) -> UploadSession:
    with platform.schema("clinic_a"):
        return UploadSession.objects.get(pk=session_id)


def test_an_upload_whose_processing_met_a_database_outage_completes_with_every_instance_stored(crash_platform):
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
        database_out_for(OUTAGE_SECONDS, worker=crash_platform.worker, until_retried=PROCESSING_RETRY)
    assert caught.status == UploadSessionStatus.PROCESSING
    assert caught.items_stored < INSTANCES

    done = wait_until(lambda: (row := session_row(platform, session["id"])).status != UploadSessionStatus.PROCESSING
                      and row, timeout=45, message="the upload to complete after the outage")
    assert done.status == UploadSessionStatus.COMPLETED
    assert (done.items_stored, done.items_duplicate, done.items_failed) == (INSTANCES, 0, 0)
    assert originals_by_sop_instance_uid(http, study.datasets) == dict(
        zip(study.sop_instance_uids, study.files, strict=True))
