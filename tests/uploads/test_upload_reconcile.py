"""An upload session stuck in `processing` (its message lost, its worker dead or beaten by a
database outage) is processed again: by the periodic sweep, or by finishing it again."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.uploads.models import UploadSession, UploadSessionStatus
from apps.uploads.tasks import upload_sessions_resume_stalled
from tests.support.dicomweb import ct_study
from tests.support.platform import wait_until
from tests.uploads.test_upload_sessions import open_session, send_file


def stuck_session(platform) -> str:
    """A session whose files are received and whose processing message never reached a worker."""
    http = platform.http("clinic_a", "technologist")
    session = open_session(http)
    for number, data in enumerate(ct_study(2).files):
        assert send_file(http, session["id"], f"{number}.dcm", data).status_code == 201
    with platform.schema("clinic_a"):
        UploadSession.objects.filter(pk=session["id"]).update(
            status=UploadSessionStatus.PROCESSING, last_activity_at=timezone.now() - timedelta(hours=1))
    return session["id"]


def completed(platform, session_id: str) -> dict:
    http = platform.http("clinic_a", "technologist")
    return wait_until(lambda: (body := http.get(f"/api/v1/uploads/{session_id}/").json())["status"] == "completed"
                      and body, timeout=90, message=f"upload {session_id} to complete")


def test_a_session_stuck_in_processing_is_resumed_by_the_sweep(platform, workers):
    session_id = stuck_session(platform)
    with platform.schema():
        assert upload_sessions_resume_stalled() >= 1
    body = completed(platform, session_id)
    assert body["items_stored"] + body["items_duplicate"] == 2
    with platform.schema("clinic_a"):
        assert AuditEvent.objects.filter(action="upload.resume", object_id=session_id).count() == 1


def test_finishing_a_stuck_session_again_processes_it(platform, workers):
    session_id = stuck_session(platform)
    http = platform.http("clinic_a", "technologist")
    assert http.post(f"/api/v1/uploads/{session_id}/finish/").status_code == 202
    assert completed(platform, session_id)["status"] == "completed"
