"""Staged upload bytes are a resource of the tenant: they count toward its storage quota while the
session is open, a file that would exceed the quota is refused in the API's error form, and an
open session left idle is expired by a periodic sweep that deletes its staged bytes."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.archive import selectors
from apps.audit.models import AuditEvent
from apps.dicom.status import FailureReason
from apps.storage.tenant_storage import storage_for
from apps.uploads import services
from apps.uploads.models import UploadFile, UploadSession
from tests.dicomweb.test_stow import on_plan
from tests.support.dicomweb import ct_study, failures, stow
from tests.uploads.test_upload_sessions import open_session, send_file

TENANT = "clinic_c"
DAY = 24 * 3600


def _usage():
    return selectors.storage_usage()


def _staged_bytes(platform) -> int:
    with platform.schema(TENANT):
        return _usage().staged_upload_bytes


def _session_with_one_file(platform):
    http = platform.http(TENANT, "technologist")
    session = open_session(http)
    data = ct_study(1).files[0]
    assert send_file(http, session["id"], "one.dcm", data).status_code == 201
    return http, session, data


def _idle_for(platform, session_id: str, seconds: int) -> None:
    """This session idle for `seconds`; every other open session of the tenant active just now (so a
    sweep touches this one alone, whatever earlier tests left open)."""
    with platform.schema(TENANT):
        now = timezone.now()
        UploadSession.objects.filter(status="open").exclude(pk=session_id).update(last_activity_at=now)
        UploadSession.objects.filter(pk=session_id).update(last_activity_at=now - timedelta(seconds=seconds))


def test_staged_bytes_count_toward_usage_while_the_session_is_open(platform):
    before = _staged_bytes(platform)

    _, _, data = _session_with_one_file(platform)

    assert _staged_bytes(platform) == before + len(data)


def test_cancelling_a_session_stops_counting_its_staged_bytes(platform):
    http, session, _ = _session_with_one_file(platform)
    before = _staged_bytes(platform)

    assert http.delete(f"/api/v1/uploads/{session['id']}/").status_code == 200

    assert _staged_bytes(platform) == before - len(ct_study(1).files[0])


def test_a_file_that_would_exceed_the_storage_quota_is_refused_with_a_json_error(platform):
    http = platform.http(TENANT, "technologist")
    session = open_session(http)
    data = ct_study(1).files[0]
    with platform.schema(TENANT):
        used, staged = _usage().total_bytes, _usage().staged_upload_bytes

    with on_plan(platform, platform.tenants[TENANT], storage_bytes_quota=used + len(data) - 1):
        response = send_file(http, session["id"], "one.dcm", data)

    assert response.status_code == 413
    assert response.json()["code"] == "storage_quota_exceeded"
    assert http.get(f"/api/v1/uploads/{session['id']}/").json()["files_received"] == 0
    with platform.schema(TENANT):
        assert _usage().staged_upload_bytes == staged
        assert not UploadFile.objects.filter(session_id=session["id"]).exists()


def test_staged_bytes_of_an_open_session_leave_no_room_for_a_stow_beyond_the_quota(platform):
    _session_with_one_file(platform)
    new = ct_study(1)
    with platform.schema(TENANT):
        usage = _usage()
    assert usage.staged_upload_bytes > 0
    # Room for the new instance if staged bytes were free; none with them counted.
    quota = usage.archive_bytes + usage.rendered_cache_bytes + len(new.files[0]) + 1

    with on_plan(platform, platform.tenants[TENANT], storage_bytes_quota=quota):
        response = stow(platform.http(TENANT, "technologist"), new.files)

    assert response.status_code == 409
    assert failures(response) == [(new.sop_instance_uids[0], FailureReason.OUT_OF_RESOURCES)]


def test_an_idle_open_session_is_expired_and_its_staged_bytes_deleted(platform):
    http, session, data = _session_with_one_file(platform)
    with platform.schema(TENANT):
        staging_key = UploadFile.objects.get(session_id=session["id"]).staging_key
    assert storage_for(platform.tenants[TENANT]).exists(staging_key)
    _idle_for(platform, session["id"], DAY + 60)
    before = _staged_bytes(platform)

    with platform.schema(TENANT):
        expired = services.upload_sessions_expire(idle_seconds=DAY)

    assert expired == 1
    body = http.get(f"/api/v1/uploads/{session['id']}/").json()
    assert body["status"] == "expired"
    assert not storage_for(platform.tenants[TENANT]).exists(staging_key)
    assert _staged_bytes(platform) == before - len(data)
    with platform.schema(TENANT):
        assert AuditEvent.objects.filter(action="upload.expire", object_id=session["id"]).count() == 1


def test_an_expired_session_takes_no_more_files(platform):
    http, session, data = _session_with_one_file(platform)
    _idle_for(platform, session["id"], DAY + 60)
    with platform.schema(TENANT):
        services.upload_sessions_expire(idle_seconds=DAY)

    response = send_file(http, session["id"], "two.dcm", data)

    assert response.status_code == 409
    assert response.json()["code"] == "upload_not_open"


def test_an_expired_session_cannot_be_finished(platform):
    http, session, _ = _session_with_one_file(platform)
    _idle_for(platform, session["id"], DAY + 60)
    with platform.schema(TENANT):
        services.upload_sessions_expire(idle_seconds=DAY)

    response = http.post(f"/api/v1/uploads/{session['id']}/finish/")

    assert response.status_code == 409
    assert response.json()["code"] == "upload_expired"


def test_a_session_active_within_the_idle_time_is_kept(platform):
    http, session, _ = _session_with_one_file(platform)
    _idle_for(platform, session["id"], DAY - 600)

    with platform.schema(TENANT):
        services.upload_sessions_expire(idle_seconds=DAY)

    assert http.get(f"/api/v1/uploads/{session['id']}/").json()["status"] == "open"


def test_receiving_a_file_counts_as_activity(platform):
    http, session, data = _session_with_one_file(platform)
    _idle_for(platform, session["id"], DAY + 60)

    assert send_file(http, session["id"], "two.dcm", data).status_code == 201
    with platform.schema(TENANT):
        services.upload_sessions_expire(idle_seconds=DAY)

    assert http.get(f"/api/v1/uploads/{session['id']}/").json()["status"] == "open"


def test_the_idle_sweep_and_the_cache_eviction_run_periodically():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {"apps.uploads.tasks.upload_sessions_expire_dispatch",
            "apps.archive.tasks.rendered_cache_evict_dispatch"} <= scheduled


def test_the_periodic_sweep_queues_the_expiry_for_every_active_tenant(platform, monkeypatch):
    from apps.uploads.tasks import upload_sessions_expire_dispatch

    queued = []
    monkeypatch.setattr("tenants.queues.enqueue", lambda task, **kwargs: queued.append((task, kwargs["tenant"].slug)))

    with platform.schema():
        upload_sessions_expire_dispatch()

    assert ("apps.uploads.tasks.upload_sessions_expire", platform.tenants[TENANT].slug) in queued
