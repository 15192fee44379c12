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

The call-back speaks only for what the engine itself stored: every series it names must be one the
engine's service user stored into the study since the job was sent, that did not exist before and
that no one else stored into (``series_stored_by_engine``). Naming any other series (the patient's
originals) is refused with 422 ``series_not_stored_by_engine`` and audited, and changes nothing. A
``failed`` report removes every series the engine stored for the job. A call-back for a job that
has already ended is 409 ``job_finished``; when the job ended without results (cancelled, timed
out) what the engine stored for it is removed first, and kept removed.

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
from apps.ai.workflow import AI_JOB_WORKFLOW
from apps.archive.models import Series
from apps.archive.services.deletion import series_delete
from apps.audit.actions import AuditAction
from apps.audit.models import AuditEvent, Outcome
from apps.audit.services import audit_record, audited_move
from apps.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from tenants.context import current_tenant
from tenants.models import Tenant

# Time to connect to the vendor, and to wait for its answer to the job POST (not for the job).
DISPATCH_TIMEOUT_SECONDS = (5.0, 30.0)


class EngineUnreachable(ConnectionError):
    """The vendor's engine did not answer, or answered 5xx: worth retrying."""


class CallbackRefused(Forbidden):
    code = "callback_refused"


class SeriesNotStoredByEngine(InvalidInput):
    """A call-back named series the job's engine did not store for the job (e.g. the originals)."""

    code = "series_not_stored_by_engine"
    status = 422


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def platform_url(tenant: Tenant) -> str:
    """The tenant's own base URL, as an engine outside the platform reaches it."""
    template = settings.AI_PLATFORM_URL_TEMPLATE
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


def _engine_user_if_any(engine_name: str) -> User | None:
    return User.objects.filter(username=f"ai-engine.{engine_name}"[:150]).first()


def series_stored_by_engine(job: AIJob, engine_name: str) -> list[str]:
    """The series of the job's study that belong to the job's engine: live, created since the job
    was sent, stored by the engine's service user and by no one else since then (read from the
    archive's store audit rows). Only these may be removed on the engine's word or after a
    time-out: a series that existed before the job (the patient's originals, even if the engine
    added an instance to it) or that a person stored into is never the engine's to remove."""
    user = _engine_user_if_any(engine_name)
    since = job.dispatched_at or job.started_at
    if user is None or since is None:
        return []
    stored_by_engine: set[str] = set()
    stored_by_others: set[str] = set()
    events = AuditEvent.objects.filter(action=AuditAction.ARCHIVE_STORE, object_type="study", object_id=job.study_instance_uid,
                                       occurred_at__gte=since).values_list("actor_type", "actor_id", "detail")
    for actor_type, actor_id, detail in events:
        by_engine = actor_type == "user" and actor_id == str(user.pk)
        (stored_by_engine if by_engine else stored_by_others).update(detail.get("series", []))
    return sorted(Series.objects.filter(
        study__study_instance_uid=job.study_instance_uid, series_instance_uid__in=stored_by_engine - stored_by_others,
        created_at__gte=since, deleted_at__isnull=True,
    ).values_list("series_instance_uid", flat=True))


def partial_series_remove(job: AIJob, engine_name: str) -> list[str]:
    """Remove what an engine stored for a job that ended without its results (a time-out, a
    failure it reported, a call-back after the job was cancelled)."""
    from apps.ai.services import AI_ACTOR

    removed = []
    for series_uid in series_stored_by_engine(job, engine_name):
        try:
            series_delete(study_instance_uid=job.study_instance_uid, series_instance_uid=series_uid, actor=AI_ACTOR)
        except NotFound:
            continue
        removed.append(series_uid)
    return removed


def callback_token_matches(*, job_id: Any, callback_token: str) -> bool:
    """Whether `callback_token` is the job's call-back secret: checked before the body is read, so
    a caller without it cannot make the platform parse anything."""
    secret_hash = AIJob.objects.filter(pk=job_id).values_list("callback_secret_hash", flat=True).first()
    return bool(secret_hash) and hmac.compare_digest(_hash(callback_token), secret_hash or "")


def external_job_callback(
    *, job_id: Any, callback_token: str, status: str, result_series_instance_uids: list[str],
    summary: dict[str, Any], error: str = "",
) -> AIJob:
    """The vendor reports the end of a job (see the module docstring).

    Every series the call-back names must be one the engine stored for this job
    (``series_stored_by_engine``); otherwise nothing changes, the refusal is audited and the
    answer is 422 ``series_not_stored_by_engine``. A ``failed`` report removes every series the
    engine stored for the job. A call-back for a job that has already ended answers 409
    ``job_finished``; if the job ended without results (cancelled, timed out), what the engine
    stored for it is removed first, and that removal is kept (it is committed before the 409)."""
    from apps.ai.services import AI_ACTOR, dispatch_next_after_commit

    refusal: DomainError | None = None
    with transaction.atomic():
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or not job.callback_secret_hash or not hmac.compare_digest(
            _hash(callback_token), job.callback_secret_hash
        ):
            raise CallbackRefused("Unknown job or wrong call-back token.")
        if job.state != JobState.RUNNING:
            refusal = _late_callback_refusal(job, status=status)
        else:
            owned = set(series_stored_by_engine(job, job.engine_name))
            not_owned = [uid for uid in dict.fromkeys(result_series_instance_uids) if uid not in owned]
            if not_owned:
                audit_record(action=AuditAction.AI_JOB_CALLBACK_REFUSE, actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
                             outcome=Outcome.DENIED,
                             detail={"status": status, "series_not_stored_by_engine": not_owned[:20]})
                refusal = SeriesNotStoredByEngine(
                    f"These series were not stored into the study by this job's engine since the job was sent, "
                    f"so the call-back may not name them: {not_owned}"
                )
        if refusal is None:
            _job_finish_from_callback(job, status=status, result_series_instance_uids=result_series_instance_uids,
                                      summary=summary, error=error)
            dispatch_next_after_commit()
    if refusal is not None:
        # Raised once the block has committed: the refusal's audit row (and a late call-back's
        # clean-up) are kept, not rolled back with the error.
        raise refusal
    return job


def _late_callback_refusal(job: AIJob, *, status: str) -> DomainError:
    """A call-back after the job ended: a job that ended without results keeps nothing the engine stored."""
    from apps.ai.services import AI_ACTOR

    removed = [] if job.state == JobState.SUCCEEDED else partial_series_remove(job, job.engine_name)
    audit_record(action=AuditAction.AI_JOB_CALLBACK_LATE, actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
                 outcome=Outcome.DENIED, detail={"state": job.state, "status": status, "removed_series": removed})
    return Conflict(f"The job has already {job.state}.", code="job_finished")


def _job_finish_from_callback(
    job: AIJob, *, status: str, result_series_instance_uids: list[str], summary: dict[str, Any], error: str,
) -> None:
    """End a running job as its engine reported (inside the call-back's transaction)."""
    from apps.ai.services import AI_ACTOR, triage_of_summary

    if status == "succeeded":
        results = list(dict.fromkeys(result_series_instance_uids))
        audited_move(job, AI_JOB_WORKFLOW, "succeed", actor=AI_ACTOR, action=AuditAction.AI_JOB_SUCCEED,
                     object_type="ai_job", detail={"via": "callback", "results": results, "error": job.error_code},
                     progress=100, summary={**summary, "triage": triage_of_summary(summary)},
                     result_series_instance_uids=results, finished_at=timezone.now())
    elif status == "failed":
        removed = partial_series_remove(job, job.engine_name)
        audited_move(job, AI_JOB_WORKFLOW, "fail", actor=AI_ACTOR, action=AuditAction.AI_JOB_FAIL,
                     object_type="ai_job", outcome=Outcome.FAILURE,
                     detail={"via": "callback", "results": job.result_series_instance_uids,
                             "error": "engine_reported_failure"},
                     error_code="engine_reported_failure",
                     error_detail=(error or "the engine reported a failure")[:4000],
                     summary={"removed_partial_series": removed}, finished_at=timezone.now())
    else:
        raise InvalidInput("status must be 'succeeded' or 'failed'.", code="invalid_status")
    access_revoke(job)
