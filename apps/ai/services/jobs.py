"""Starting, dispatching, resending and cancelling AI jobs."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.ai import selectors
from apps.ai.engines.base import EngineDescriptor
from apps.ai.models import AIJob, JobState, JobTrigger, RoutingRule
from apps.ai.services.base import (
    AI_ACTOR,
    AIJobQuotaExceeded,
    EngineDisabled,
    EngineNotFound,
    JobAlreadyFinished,
    JobNotFound,
    StudyNotAccepted,
    _access_revoke,
    _advisory_lock,
    _uses_shared_queue,
    lost_attempt_grace_seconds,
    max_running_jobs_per_tenant,
    unclaimed_resend_seconds,
)
from apps.ai.workflow import AI_JOB_WORKFLOW
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record, audited_move
from apps.core.errors import StudyNotFound
from tenants.context import current_tenant
from tenants.deployment import WorkKind, policy_for
from tenants.models import Tenant
from tenants.queues import enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobStart:
    job: AIJob
    reused: bool


def _check_study_accepted(descriptor: EngineDescriptor, study_instance_uid: str) -> None:
    series = selectors.image_series_of_study(study_instance_uid)
    reasons: list[str] = []
    for item in series:
        if descriptor.modalities and item["modality"].upper() not in descriptor.modalities:
            reasons.append(f"series {item['series_instance_uid']}: modality {item['modality']!r}")
            continue
        body_part = (item["body_part_examined"] or "").upper()
        if descriptor.body_parts and body_part and body_part not in descriptor.body_parts:
            reasons.append(f"series {item['series_instance_uid']}: body part {body_part!r}")
            continue
        if item["images"] < descriptor.minimum_slices:
            reasons.append(f"series {item['series_instance_uid']}: {item['images']} images, "
                           f"fewer than {descriptor.minimum_slices}")
            continue
        return
    raise StudyNotAccepted(
        f"{descriptor.name} accepts {list(descriptor.modalities) or 'any modality'} with at least "
        f"{descriptor.minimum_slices} images; no series of this study qualifies"
        + (f" ({'; '.join(reasons[:5])})" if reasons else " (it has no image series)")
    )


def _check_quota(tenant: Tenant) -> None:
    limit = policy_for(tenant).quotas().ai_jobs_per_month
    if limit is None:
        return
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = AIJob.objects.filter(created_at__gte=month_start).count()
    if used >= limit:
        raise AIJobQuotaExceeded(f"The plan's quota of {limit} AI jobs a month is used up.")


def job_start(
    *, engine_name: str, study_instance_uid: str, actor: Actor, user: Any = None, forced: bool = False,
    trigger: str = JobTrigger.MANUAL, routing_rule: RoutingRule | None = None, idempotency_key: str = "",
) -> JobStart:
    """Queue `engine_name` on a study, or return the job that already answers the request.

    Not forced, a succeeded job of the same engine version on the same study is returned as it is
    (``reused``); forced or not, a queued or running one is joined rather than duplicated.
    """
    engine = selectors.engine_registered(engine_name)
    if engine is None:
        raise EngineNotFound(f"No engine named {engine_name!r}.")
    if not engine.enabled:
        raise EngineDisabled(f"{engine_name} is not enabled for this tenant.")
    if selectors.study_live(study_instance_uid) is None:
        raise StudyNotFound(f"No study {study_instance_uid} in this archive.")
    _check_study_accepted(engine.descriptor, study_instance_uid)
    if idempotency_key and user is not None:
        earlier = AIJob.objects.filter(requested_by=user, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return JobStart(job=earlier, reused=True)
    tenant = current_tenant()
    version = engine.descriptor.version
    with transaction.atomic():
        _advisory_lock(f"ai-job:{engine_name}:{version}:{study_instance_uid}")
        if not forced:
            finished = selectors.job_finished_result(engine_name=engine_name, engine_version=version,
                                                     study_instance_uid=study_instance_uid)
            if finished is not None:
                return JobStart(job=finished, reused=True)
        active = selectors.job_active(engine_name=engine_name, engine_version=version,
                                      study_instance_uid=study_instance_uid)
        if active is not None:
            return JobStart(job=active, reused=True)
        _check_quota(tenant)
        job = AIJob.objects.create(
            engine_name=engine_name, engine_version=version, study_instance_uid=study_instance_uid,
            trigger=trigger, routing_rule=routing_rule, forced=forced, requested_by=user,
            idempotency_key=idempotency_key if user is not None else "",
        )
        audit_record(action=AuditAction.AI_JOB_START, actor=actor, object_type="ai_job", object_id=job.pk,
                     detail={"engine": engine_name, "version": version, "study": study_instance_uid,
                             "forced": forced, "trigger": trigger})
    jobs_dispatch(tenant=tenant)
    return JobStart(job=job, reused=False)


def jobs_dispatch(*, tenant: Tenant) -> int:
    """Send the run messages of queued jobs, oldest first: all of them for a tenant with its own
    queue; on the shared queue, only as many as keep the tenant's jobs in flight (dispatched or
    running) within its cap. So the shared queue holds at most a few messages per tenant, and its
    FIFO order serves tenants in turn however large one tenant's backlog is."""
    shared = _uses_shared_queue(tenant)
    with transaction.atomic():
        _advisory_lock("ai-dispatch")
        waiting = AIJob.objects.filter(state=JobState.QUEUED, dispatched_at__isnull=True).order_by("created_at")
        limit = 1000
        if shared:
            in_flight = AIJob.objects.filter(
                Q(state=JobState.RUNNING) | Q(state=JobState.QUEUED, dispatched_at__isnull=False)
            ).count()
            limit = max(0, max_running_jobs_per_tenant() - in_flight)
        jobs = list(waiting.select_for_update(skip_locked=True)[:limit]) if limit else []
        if not jobs:
            return 0
        _send_on_commit(jobs, tenant=tenant)
    return len(jobs)


def jobs_resend_unclaimed(*, older_than_seconds: float | None = None) -> int:
    """Send again the run message of every job dispatched long ago that no worker has claimed.

    A message can be lost (a broker restarted without its data; a task that ended before claiming
    its job), and the job would then hold one of its tenant's in-flight places for good. A second
    message is harmless: whichever runs first claims the job, the other finds it taken and stops."""
    seconds = unclaimed_resend_seconds() if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    with transaction.atomic():
        jobs = list(AIJob.objects.select_for_update(skip_locked=True)
                    .filter(state=JobState.QUEUED, dispatched_at__lt=cutoff).order_by("created_at"))
        for job in jobs:
            logger.warning("AI job %s was dispatched at %s and never claimed: sending it again", job.pk, job.dispatched_at)
            audit_record(action=AuditAction.AI_JOB_RESEND, actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
                         detail={"dispatched_at": job.dispatched_at.isoformat() if job.dispatched_at else None})
        _send_on_commit(jobs, tenant=current_tenant())
    return len(jobs)


def jobs_resend_lost_attempts(*, now: datetime | None = None) -> int:
    """Send the run message again for every job whose running attempt outlived its time-out.

    The run ends itself at the engine's time-out and the hard time limit ends it shortly after, so
    an attempt still `running` past that plus lost_attempt_grace_seconds() lost its worker (a pool
    process killed, a task ended by a database blip). Its message was acknowledged, so nothing would
    run it again, and it would hold its tenant's in-flight place for good. The new message claims the
    job again, or fails it `worker_lost` once AI_JOB_MAX_ATTEMPTS are used (see _job_claim). External
    jobs are left to their own expiry."""
    now = now or timezone.now()
    timeouts = {engine.descriptor.name: engine.timeout_seconds for engine in selectors.engines_registered()}
    tenant = current_tenant()
    resent = 0
    with transaction.atomic():
        running = (AIJob.objects.select_for_update(skip_locked=True)
                   .filter(state=JobState.RUNNING, access_token_id__isnull=True, started_at__isnull=False))
        for job in running:
            timeout = timeouts.get(job.engine_name, 600.0)
            assert job.started_at is not None
            if (now - job.started_at).total_seconds() <= timeout + lost_attempt_grace_seconds():
                continue
            logger.warning("AI job %s has run since %s, past its time-out: its worker was lost, sending it again",
                           job.pk, job.started_at)
            audit_record(action=AuditAction.AI_JOB_RESEND, actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
                         detail={"lost_attempt_started_at": job.started_at.isoformat(), "attempts": job.attempts})
            job_enqueue(job_id=job.pk, tenant=tenant, timeout_seconds=timeout)
            resent += 1
    return resent


def _send_on_commit(jobs: list[AIJob], *, tenant: Tenant) -> None:
    """Mark the jobs dispatched now and send their run messages once the transaction commits."""
    timeouts = {engine.descriptor.name: engine.timeout_seconds for engine in selectors.engines_registered()}
    now = timezone.now()
    for job in jobs:
        job.dispatched_at = now
        job.save(update_fields=["dispatched_at"])
        timeout = timeouts.get(job.engine_name, 600.0)
        # In this transaction: the run message is an outbox row that commits with `dispatched_at`.
        job_enqueue(job_id=job.pk, tenant=tenant, timeout_seconds=timeout)


def dispatch_next_after_commit() -> None:
    """A job left the tenant's in-flight set: let the next one go, once this transaction commits."""
    tenant = current_tenant()
    transaction.on_commit(lambda: jobs_dispatch(tenant=tenant))


# The run checks the engine's time-out itself between steps (see _progress); Celery's soft limit,
# a little later, ends a job stuck inside one step.
STUCK_STEP_GRACE_SECONDS = 5.0


def job_enqueue(*, job_id: uuid.UUID | str, tenant: Tenant, timeout_seconds: float, countdown: float = 0.0) -> None:
    """Queue the job's run task on the tenant's `ai` queue (once the current transaction commits),
    with soft and hard limits past the engine's time-out."""
    enqueue(
        "apps.ai.tasks.ai_job_run", tenant=tenant, work=WorkKind.AI, args=(str(job_id),), countdown=countdown or None,
        soft_time_limit=timeout_seconds + STUCK_STEP_GRACE_SECONDS, time_limit=timeout_seconds + 30,
    )


def job_enqueue_expiry(*, job_id: uuid.UUID | str, tenant: Tenant, countdown: float) -> None:
    """Fail a dispatched external job as `timeout` if it is still running after `countdown` seconds."""
    enqueue("apps.ai.tasks.ai_external_job_expire", tenant=tenant, work=WorkKind.AI, args=(str(job_id),), countdown=countdown)


def job_cancel(*, job_id: uuid.UUID | str, actor: Actor) -> AIJob:
    """Cancel a queued or running job; a running one finishes its computation but stores nothing."""
    with transaction.atomic():
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            raise JobNotFound("No such AI job.")
        if job.is_finished:
            raise JobAlreadyFinished(f"The job has already {job.state}.")
        audited_move(job, AI_JOB_WORKFLOW, "cancel", actor=actor, action=AuditAction.AI_JOB_CANCEL,
                     object_type="ai_job", detail={"previous_state": job.state}, finished_at=timezone.now())
        _access_revoke(job)
        dispatch_next_after_commit()
    return job
