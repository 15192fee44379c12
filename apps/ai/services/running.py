"""Running a job: claim it, load its series, run the engine, fail, expire or requeue it."""

from __future__ import annotations

import time
import uuid
from functools import partial

from django.db import transaction
from django.utils import timezone
from pydicom.dataset import Dataset

from apps.ai import selectors
from apps.ai.engines.base import (
    EngineDescriptor,
    EngineResult,
    VolumeNotAccepted,
    VolumeRefused,
    volume_from_datasets,
)
from apps.ai.engines.onnx_engine import OnnxModelError
from apps.ai.models import AIJob, EngineKind, JobState
from apps.ai.registry import RegisteredEngine
from apps.ai.services.base import (
    AI_ACTOR,
    JobFailure,
    RunOutcome,
    _access_revoke,
    _advisory_lock,
    _uses_shared_queue,
    lost_attempt_grace_seconds,
    max_attempts,
    max_running_jobs_per_tenant,
)
from apps.ai.services.jobs import dispatch_next_after_commit
from apps.ai.services.results import _encode_results, _job_complete, _triage
from apps.ai.workflow import AI_JOB_WORKFLOW
from apps.archive import retrieval
from apps.archive.selectors import instances_for_retrieval
from apps.audit.actions import AuditAction
from apps.audit.models import Outcome
from apps.audit.services import audited_move
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant
from tenants.models import Tenant


def _job_claim(job_id: uuid.UUID | str, tenant: Tenant, *, timeout_seconds: float) -> str:
    with transaction.atomic():
        shared = _uses_shared_queue(tenant)
        if shared:
            _advisory_lock("ai-running")
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return RunOutcome.SKIPPED
        lost = (job.state == JobState.RUNNING and job.started_at is not None and job.access_token_id is None
                and (timezone.now() - job.started_at).total_seconds() > timeout_seconds + lost_attempt_grace_seconds())
        if job.state != JobState.QUEUED and not lost:
            return RunOutcome.SKIPPED
        if lost and job.attempts >= max_attempts():
            transaction.on_commit(partial(job_fail, job_id=job.pk, code="worker_lost",
                                          detail=f"the job's worker was lost {job.attempts} times"))
            return RunOutcome.FAILED
        if shared and selectors.jobs_running_count(excluding=job.pk) >= max_running_jobs_per_tenant():
            return RunOutcome.DEFERRED
        attempt = job.attempts + 1
        audited_move(job, AI_JOB_WORKFLOW, "claim", actor=AI_ACTOR, action=AuditAction.AI_JOB_RUN, object_type="ai_job",
                     detail={"attempt": attempt, "after_lost_attempt": lost},
                     started_at=timezone.now(), attempts=attempt, progress=5)
    return "claimed"


def _progress(job_id: uuid.UUID | str, percent: int, *, deadline: float | None = None) -> bool:
    """Record progress; False if the job is no longer running (cancelled meanwhile).

    Past `deadline` (time.monotonic()) the job fails with `timeout` here. Celery's soft time limit
    ends a job that is stuck inside a step, but its pool looks only about once a second, so a short
    time-out would let a fast job finish late; this check between steps honours it exactly."""
    if deadline is not None and time.monotonic() > deadline:
        raise JobFailure("timeout", "the engine did not finish within its time-out")
    return AIJob.objects.filter(pk=job_id, state=JobState.RUNNING).update(progress=percent) == 1


def _load_series(job: AIJob, descriptor: EngineDescriptor) -> list[Dataset]:
    for item in selectors.image_series_of_study(job.study_instance_uid):
        if descriptor.modalities and item["modality"].upper() not in descriptor.modalities:
            continue
        if item["images"] < descriptor.minimum_slices:
            continue
        files = [instance for instance in instances_for_retrieval(
            study_instance_uid=job.study_instance_uid, series_instance_uid=item["series_instance_uid"],
        ) if instance.has_pixels]
        storage = storage_for(current_tenant())
        try:
            return [retrieval.read_dataset(storage, instance) for instance in files]
        except retrieval.InstanceUnreadable as error:
            raise JobFailure("source_unreadable", str(error.detail)) from error
    raise JobFailure("no_suitable_series", f"no series of the study is accepted by {descriptor.name}")


def _run_engine(engine: RegisteredEngine, datasets: list[Dataset]) -> EngineResult:
    try:
        volume = volume_from_datasets(datasets)
    except VolumeRefused as error:
        raise JobFailure("volume_refused", str(error)) from error
    try:
        return engine.build().run(volume)
    except VolumeNotAccepted as error:
        raise JobFailure("volume_not_accepted", str(error)) from error
    except OnnxModelError as error:
        raise JobFailure("engine_error", str(error)) from error
    except (ValueError, ArithmeticError, RuntimeError, MemoryError) as error:
        # An engine's own fault (a bad model, a numerical failure): the job fails with its message.
        raise JobFailure("engine_error", f"{type(error).__name__}: {error}") from error


def job_fail(*, job_id: uuid.UUID | str, code: str, detail: str) -> str:
    """Mark a queued or running job failed; nothing it computed is kept."""
    with transaction.atomic():
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return RunOutcome.SKIPPED
        audited_move(job, AI_JOB_WORKFLOW, "fail", actor=AI_ACTOR, action=AuditAction.AI_JOB_FAIL, object_type="ai_job",
                     outcome=Outcome.FAILURE, detail={"code": code, "detail": detail[:500]},
                     finished_at=timezone.now(), error_code=code, error_detail=detail[:4000])
        _access_revoke(job)
        dispatch_next_after_commit()
    return RunOutcome.FAILED


def job_expire_if_running(*, job_id: uuid.UUID | str) -> str:
    """An external job still running at its deadline fails as `timeout` (its token is revoked)."""
    job = AIJob.objects.filter(pk=job_id).first()
    if job is None or job.state != JobState.RUNNING:
        return RunOutcome.SKIPPED
    from apps.ai.external import partial_series_remove

    # A failed job keeps nothing: remove what the engine stored before it went silent.
    removed = partial_series_remove(job, job.engine_name)
    detail = "the external engine did not call back within its time-out"
    if removed:
        detail += f"; removed {len(removed)} series it had stored"
    return job_fail(job_id=job_id, code="timeout", detail=detail)


def job_requeue_after_transient_fault(*, job_id: uuid.UUID | str, detail: str) -> bool:
    """Put a running job back in the queue after a fault that can pass; False once attempts are used up.

    A job still `queued` met the fault before this delivery claimed it (a database out when the
    task started): it is in the queue already, and only needs its message sent again."""
    with transaction.atomic():
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is not None and job.state == JobState.QUEUED:
            return True
        if job is None or job.state != JobState.RUNNING:
            return False
        if job.attempts >= max_attempts():
            return False
        audited_move(job, AI_JOB_WORKFLOW, "requeue", actor=AI_ACTOR, action=AuditAction.AI_JOB_REQUEUE,
                     object_type="ai_job", detail={"attempts": job.attempts, "detail": detail[:500]},
                     progress=0, error_detail=detail[:4000])
    return True


def job_run(*, job_id: uuid.UUID | str) -> str:
    """Run a queued job to its end (see the module docstring); returns a ``RunOutcome`` value."""
    tenant = current_tenant()
    job = AIJob.objects.filter(pk=job_id).first()
    if job is None:
        return RunOutcome.SKIPPED
    engine = selectors.engine_registered(job.engine_name)
    timeout_seconds = engine.timeout_seconds if engine else 600.0
    claimed = _job_claim(job_id, tenant, timeout_seconds=timeout_seconds)
    if claimed != "claimed":
        return claimed
    deadline = time.monotonic() + timeout_seconds
    job.refresh_from_db()
    try:
        if engine is None or engine.descriptor.version != job.engine_version:
            raise JobFailure("engine_unavailable", f"{job.engine_name} {job.engine_version} is no longer registered")
        if engine.kind == EngineKind.EXTERNAL:
            from apps.ai.external import external_job_dispatch

            return external_job_dispatch(job=job, engine=engine)
        datasets = _load_series(job, engine.descriptor)
        if not _progress(job_id, 30, deadline=deadline):
            return RunOutcome.CANCELLED
        result = _run_engine(engine, datasets)
        if not _progress(job_id, 70, deadline=deadline):
            return RunOutcome.CANCELLED
        encoded = _encode_results(result, datasets)
        if not _progress(job_id, 90, deadline=deadline):
            return RunOutcome.CANCELLED
        summary = {**dict(result.summary), "triage": _triage(result), "findings": encoded.findings}
        return _job_complete(job_id, source_series_uid=str(datasets[0].SeriesInstanceUID), summary=summary,
                             payloads=encoded.payloads)
    except JobFailure as failure:
        return job_fail(job_id=job_id, code=failure.code, detail=failure.detail)
