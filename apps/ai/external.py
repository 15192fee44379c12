"""The adapter for vendor AI systems reached over HTTP.

Protocol (JSON over HTTPS), per job:

1. the platform POSTs to the engine's ``url``: ``{"job_id", "engine", "engine_version",
   "study_instance_uid", "dicomweb_url" (the study's DICOMweb URL), "dicomweb_root", "access_token",
   "access_token_expires_at", "callback_url", "callback_token"}``; the engine answers 2xx to accept;
2. the engine reads the study with ``Authorization: Bearer <access_token>`` (WADO-RS), STOWs its SEG
   and SR into the same study, then POSTs to ``callback_url`` with ``Authorization: Bearer
   <callback_token>``: ``{"status": "succeeded", "result_series_instance_uids": [...],
   "summary": {...}}`` or ``{"status": "failed", "error": "...", "result_series_instance_uids":
   [partial series to remove]}``.

An unreachable engine (connection error, 5xx) is a transient fault: the job is retried with
backoff and fails as ``engine_unreachable`` once its attempts are used up; a 4xx fails it as
``engine_refused``. An engine that never calls back fails the job as ``timeout`` after the engine's
time-out. Whenever the job ends, its access token is revoked.

The access token is a short-lived API token of a per-engine service user (technologist in a
clinic, radiologist in a hospital), scoped to the job's study: DICOMweb accepts it only under
``/dicomweb/studies/<that study>/`` (WADO-RS reads and STOW-RS into the study), never for another
study or a search across studies, and the REST API refuses it. It expires with the job's time-out
and is revoked when the job ends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, User
from apps.accounts.roles import Role
from apps.accounts.services import token_issue, user_create
from apps.ai.models import AIJob, JobState
from apps.ai.registry import RegisteredEngine
from apps.archive.models import Series
from apps.archive.services.deletion import series_delete
from apps.audit.models import AuditEvent, Outcome
from apps.audit.services import audit_record
from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from tenants.models import Tenant
from tenants.queues import current_tenant

# Time to connect to the vendor, and to wait for its answer to the job POST (not for the job).
DISPATCH_TIMEOUT_SECONDS = (5.0, 30.0)


class EngineUnreachable(ConnectionError):
    """The vendor's engine did not answer, or answered 5xx: worth retrying."""


class CallbackRefused(Forbidden):
    code = "callback_refused"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def platform_url(tenant: Tenant) -> str:
    """The tenant's own base URL, as an engine outside the platform reaches it."""
    template = getattr(settings, "AI_PLATFORM_URL_TEMPLATE", "https://{domain}")
    return template.format(domain=tenant.get_primary_domain().domain).rstrip("/")


def _engine_user(engine_name: str, tenant: Tenant) -> User:
    username = f"ai-engine.{engine_name}"[:150]
    user = User.objects.filter(username=username).first()
    if user is None:
        role = Role.TECHNOLOGIST if tenant.kind == "clinic" else Role.RADIOLOGIST
        user = user_create(username=username, role=role, display_name=f"AI engine {engine_name}")
    return user


def access_revoke(job: AIJob) -> None:
    """Revoke the job's access token (idempotent); call inside the transaction that ends the job."""
    if job.access_token_id is not None:
        ApiToken.objects.filter(pk=job.access_token_id, revoked_at__isnull=True).update(revoked_at=timezone.now())


def external_job_dispatch(*, job: AIJob, engine: RegisteredEngine) -> str:
    """Hand a running job to the vendor; it stays running until the call-back or the time-out."""
    from apps.ai.services import AI_ACTOR, JobFailure, RunOutcome, job_enqueue_expiry

    tenant = current_tenant()
    callback_secret = secrets.token_urlsafe(32)
    lifetime = timedelta(seconds=engine.timeout_seconds + 60)
    with transaction.atomic():
        locked = AIJob.objects.select_for_update().filter(pk=job.pk, state=JobState.RUNNING).first()
        if locked is None:
            return RunOutcome.CANCELLED
        access_revoke(locked)  # an earlier attempt's token
        issued = token_issue(user=_engine_user(engine.descriptor.name, tenant), name=f"ai job {job.pk}",
                             lifetime=lifetime, actor=AI_ACTOR, study_instance_uid_scope=job.study_instance_uid)
        locked.access_token_id = issued.token.pk
        locked.callback_secret_hash = _hash(callback_secret)
        locked.progress = 10
        locked.save(update_fields=["access_token_id", "callback_secret_hash", "progress"])
    base = platform_url(tenant)
    payload = {
        "job_id": str(job.pk),
        "engine": engine.descriptor.name,
        "engine_version": engine.descriptor.version,
        "study_instance_uid": job.study_instance_uid,
        "dicomweb_root": f"{base}/dicomweb",
        "dicomweb_url": f"{base}/dicomweb/studies/{job.study_instance_uid}",
        "access_token": issued.secret,
        "access_token_expires_at": issued.token.expires_at.isoformat() if issued.token.expires_at else None,
        "callback_url": f"{base}/api/v1/ai/jobs/{job.pk}/callback/",
        "callback_token": callback_secret,
    }
    url = str(engine.definition["url"])
    try:
        response = requests.post(url, json=payload, timeout=DISPATCH_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        _revoke_now(job.pk)
        raise EngineUnreachable(f"{url} did not answer: {type(error).__name__}") from error
    if response.status_code >= 500:
        _revoke_now(job.pk)
        raise EngineUnreachable(f"{url} answered {response.status_code}")
    if response.status_code >= 400:
        _revoke_now(job.pk)
        raise JobFailure("engine_refused", f"{url} refused the job: {response.status_code} {response.text[:500]}")
    AIJob.objects.filter(pk=job.pk, state=JobState.RUNNING).update(progress=20)
    job_enqueue_expiry(job_id=job.pk, tenant=tenant, countdown=engine.timeout_seconds)
    return RunOutcome.DISPATCHED


def _revoke_now(job_id: Any) -> None:
    with transaction.atomic():
        job = AIJob.objects.filter(pk=job_id).first()
        if job is not None:
            access_revoke(job)


def series_stored_by_engine(job: AIJob, engine_name: str) -> list[str]:
    """The series the engine's service user stored into the job's study since the job was sent
    (read from the archive's store audit rows), e.g. to remove after a time-out."""
    user = User.objects.filter(username=f"ai-engine.{engine_name}"[:150]).first()
    since = job.dispatched_at or job.started_at
    if user is None or since is None:
        return []
    events = AuditEvent.objects.filter(action="archive.store", object_type="study", object_id=job.study_instance_uid,
                                       actor_id=str(user.pk), occurred_at__gte=since)
    return sorted({uid for detail in events.values_list("detail", flat=True) for uid in detail.get("series", [])})


def partial_series_remove(job: AIJob, engine_name: str) -> list[str]:
    """Remove what an engine stored for a job that ended without its results (a time-out)."""
    return _remove_series(job, series_stored_by_engine(job, engine_name))


def _remove_series(job: AIJob, series_uids: list[str]) -> list[str]:
    from apps.ai.services import AI_ACTOR

    removed = []
    for series_uid in series_uids:
        try:
            series_delete(study_instance_uid=job.study_instance_uid, series_instance_uid=series_uid, actor=AI_ACTOR)
        except NotFound:
            continue
        removed.append(series_uid)
    return removed


def external_job_callback(
    *, job_id: Any, callback_token: str, status: str, result_series_instance_uids: list[str],
    summary: dict[str, Any], error: str = "",
) -> AIJob:
    """The vendor reports the end of a job (see the module docstring)."""
    from apps.ai.services import AI_ACTOR, dispatch_next_after_commit, triage_of_summary

    with transaction.atomic():
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or not job.callback_secret_hash or not hmac.compare_digest(
            _hash(callback_token), job.callback_secret_hash
        ):
            raise CallbackRefused("Unknown job or wrong call-back token.")
        if job.state != JobState.RUNNING:
            # Too late (cancelled or timed out): whatever the engine stored for it goes.
            _remove_series(job, result_series_instance_uids)
            raise Conflict(f"The job has already {job.state}.", code="job_finished")
        if status == "succeeded":
            present = set(Series.objects.filter(
                study__study_instance_uid=job.study_instance_uid, series_instance_uid__in=result_series_instance_uids,
                deleted_at__isnull=True,
            ).values_list("series_instance_uid", flat=True))
            missing = [uid for uid in result_series_instance_uids if uid not in present]
            if missing:
                raise InvalidInput(f"Result series not in the study's archive: {missing}", code="results_missing",
                                   status=422)
            job.state = JobState.SUCCEEDED
            job.progress = 100
            job.summary = {**summary, "triage": triage_of_summary(summary)}
            job.result_series_instance_uids = list(result_series_instance_uids)
            action, outcome = "ai.job_succeed", Outcome.SUCCESS
        elif status == "failed":
            removed = _remove_series(job, result_series_instance_uids)
            job.state = JobState.FAILED
            job.error_code = "engine_reported_failure"
            job.error_detail = (error or "the engine reported a failure")[:4000]
            job.summary = {"removed_partial_series": removed}
            action, outcome = "ai.job_fail", Outcome.FAILURE
        else:
            raise InvalidInput("status must be 'succeeded' or 'failed'.", code="invalid_status")
        job.finished_at = timezone.now()
        access_revoke(job)
        job.save()
        dispatch_next_after_commit()
        audit_record(action=action, actor=AI_ACTOR, object_type="ai_job", object_id=job.pk, outcome=outcome,
                     detail={"via": "callback", "results": job.result_series_instance_uids,
                             "error": job.error_code})
    return job
