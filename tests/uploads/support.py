"""An upload caught half-way through its processing, for the fault tests: a zip of a CT study sent
and finished, the worker held at its next instance by a table lock while the fault happens, then
the session followed to its end (tests/uploads/test_worker_crash.py, test_database_outage.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.uploads.models import UploadSession, UploadSessionStatus
from tests.support.broker_outage import originals_by_sop_instance_uid
from tests.support.dicomweb import ct_study
from tests.support.faults import table_locked
from tests.support.platform import wait_until
from tests.uploads.test_upload_sessions import open_session, send_file, zip_of


def session_row(platform: Any, session_id: str) -> UploadSession:
    with platform.schema("clinic_a"):
        return UploadSession.objects.get(pk=session_id)


@dataclass(frozen=True)
class CaughtUpload:
    platform: Any
    http: Any
    study: Any
    session_id: str

    def completed(self, *, message: str) -> UploadSession:
        """The session once it has left `processing`, asserted complete with every instance stored
        once and retrievable byte for byte."""
        done = wait_until(
            lambda: (row := session_row(self.platform, self.session_id)).status != UploadSessionStatus.PROCESSING
            and row, timeout=45, message=message)
        assert done.status == UploadSessionStatus.COMPLETED
        instances = len(self.study.files)
        assert (done.items_stored, done.items_duplicate, done.items_failed) == (instances, 0, 0)
        assert originals_by_sop_instance_uid(self.http, self.study.datasets) == dict(
            zip(self.study.sop_instance_uids, self.study.files, strict=True))
        return done


def upload_caught_mid_processing(platform: Any, *, instances: int, fault: Callable[[], None]) -> CaughtUpload:
    """Send and finish a zip of `instances` CT images, and run `fault` while the worker is held
    between two instances of it (asserted still processing, part stored)."""
    http = platform.http("clinic_a", "technologist")
    study = ct_study(instances)
    session = open_session(http)
    archive = zip_of({f"series/{index}.dcm": data for index, data in enumerate(study.files)})
    assert send_file(http, session["id"], "study.zip", archive, "application/zip").status_code == 201
    assert http.post(f"/api/v1/uploads/{session['id']}/finish/").status_code == 202

    wait_until(lambda: session_row(platform, session["id"]).items_stored >= 2, timeout=30,
               interval=0.05, message="the worker to store the first instances of the zip")
    with table_locked(platform, "clinic_a", "archive_instance"):  # the worker waits at its next instance
        caught = session_row(platform, session["id"])
        fault()
    assert caught.status == UploadSessionStatus.PROCESSING
    assert caught.items_stored < instances
    return CaughtUpload(platform=platform, http=http, study=study, session_id=session["id"])
