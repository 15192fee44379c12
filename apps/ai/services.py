"""AI use cases: configure engines and routing rules, start, run, cancel and finish jobs.

Each function owns its transaction and writes its audit event. ``job_run`` is what the Celery
task calls; it is safe to run twice (only a queued job is claimed) and stores results only in
the transaction that marks the job succeeded, so a failed or cancelled job stores nothing.
"""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from pydicom.dataset import Dataset

from apps.ai import selectors
from apps.ai.engines.base import (
    EngineDescriptor,
    EngineResult,
    Nodule,
    OutputKind,
    VolumeNotAccepted,
    VolumeRefused,
    volume_from_datasets,
)
from apps.ai.engines.onnx_engine import OnnxModelError
from apps.ai.models import AIJob, EngineKind, EngineSetting, JobState, JobTrigger, RoutingRule
from apps.ai.registry import RegisteredEngine, validate_definition
from apps.ai.results.dicom_results import (
    ResultCreator,
    build_nodule_measurement_report,
    build_nodule_segmentation,
    to_bytes,
)
from apps.ai.routing_patterns import PatternNotSupported, compile_study_description_pattern
from apps.archive import retrieval
from apps.archive.selectors import instances_for_retrieval
from apps.archive.services.ingest import StreamPart, instances_store
from apps.audit.models import Outcome
from apps.audit.services import Actor, audit_record
from apps.core.errors import Conflict, DomainError, InvalidInput, NotFound, StudyNotFound
from apps.storage.tenant_storage import storage_for
from tenants.context import current_schema_name, current_tenant
from tenants.deployment import WorkKind, policy_for
from tenants.models import Tenant
from tenants.queues import enqueue

logger = logging.getLogger(__name__)

AI_ACTOR = Actor.system("ai")
# Result series are numbered high so they sort after the acquired series in viewers.
SEGMENTATION_SERIES_NUMBER = 9001
REPORT_SERIES_NUMBER = 9002
# Nodules this large or larger raise the worklist's triage flag (Fleischner 2017: follow-up from 6 mm).
TRIAGE_FLAG_DIAMETER_MM = 6.0
# Every rule of a tenant is evaluated on each of its stable studies, on the shared ingest queue:
# the number of rules is bounded like the length of their patterns.
MAX_ROUTING_RULES_PER_TENANT = 100


def max_running_jobs_per_tenant() -> int:
    """Fair share on the shared `ai` queue: a public-cloud tenant runs at most this many jobs at once."""
    return settings.AI_TENANT_MAX_RUNNING_JOBS


def deferral_seconds() -> float:
    return settings.AI_DEFER_SECONDS


def max_attempts() -> int:
    return settings.AI_JOB_MAX_ATTEMPTS


def unclaimed_resend_seconds() -> float:
    """A job dispatched this long ago and still not claimed by a worker has its message sent again."""
    return settings.AI_UNCLAIMED_RESEND_SECONDS


# --- errors -------------------------------------------------------------------------------------------


class EngineNotFound(NotFound):
    code = "engine_not_found"


class EngineDisabled(Conflict):
    code = "engine_disabled"


class StudyNotAccepted(InvalidInput):
    code = "study_not_accepted"
    status = 422


class AIJobQuotaExceeded(DomainError):
    code = "ai_quota_exceeded"
    status = 429


class JobNotFound(NotFound):
    code = "job_not_found"


class JobAlreadyFinished(Conflict):
    code = "job_finished"


class InvalidRoutingRule(InvalidInput):
    code = "invalid_routing_rule"


class RoutingRulesLimitReached(Conflict):
    code = "routing_rules_limit"


class JobFailure(Exception):
    """Ends a run as failed with a stable code; nothing of the run is kept."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


# --- engines and routing rules ---------------------------------------------------------------------


def engine_setting_update(
    *, engine_name: str, actor: Actor, enabled: bool | None = None, timeout_seconds: float | None = None
) -> RegisteredEngine:
    """Enable or disable an engine for this tenant, or change its time-out."""
    engine = selectors.engine_registered(engine_name)
    if engine is None:
        raise EngineNotFound(f"No engine named {engine_name!r}.")
    if timeout_seconds is not None and not 0 < timeout_seconds <= 6 * 3600:
        raise InvalidInput("timeout_seconds must be between 0 and 21600.", code="invalid_timeout")
    with transaction.atomic():
        setting, _ = EngineSetting.objects.select_for_update().get_or_create(
            engine_name=engine_name, defaults={"kind": engine.kind, "definition": dict(engine.definition)},
        )
        if enabled is not None:
            setting.enabled = enabled
        if timeout_seconds is not None:
            setting.timeout_seconds = timeout_seconds
        setting.save()
        audit_record(action="ai.engine_configure", actor=actor, object_type="ai_engine", object_id=engine_name,
                     detail={"enabled": setting.enabled, "timeout_seconds": setting.timeout_seconds})
    refreshed = selectors.engine_registered(engine_name)
    assert refreshed is not None
    return refreshed


def engine_define(
    *, engine_name: str, kind: str, definition: dict[str, Any], actor: Actor, enabled: bool = True,
    timeout_seconds: float = 600.0,
) -> RegisteredEngine:
    """Give this tenant an ONNX model or a vendor engine (an operator's action: the model path is
    a path on the workers). The definition is validated before it is saved."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,99}", engine_name):
        raise InvalidInput("engine names are 2–100 lowercase letters, digits, '.', '_' or '-'.", code="invalid_name")
    if engine_name in {descriptor.name for descriptor in _built_in_names()}:
        raise Conflict(f"{engine_name} is a built-in engine.", code="engine_built_in")
    validate_definition(engine_name, kind, definition)
    with transaction.atomic():
        EngineSetting.objects.update_or_create(
            engine_name=engine_name,
            defaults={"kind": kind, "definition": definition, "enabled": enabled, "timeout_seconds": timeout_seconds},
        )
        audit_record(action="ai.engine_define", actor=actor, object_type="ai_engine", object_id=engine_name,
                     detail={"kind": kind, "version": str(definition.get("version", ""))})
    engine = selectors.engine_registered(engine_name)
    assert engine is not None
    return engine


def _built_in_names() -> list[EngineDescriptor]:
    from apps.ai.registry import built_in_descriptors

    return built_in_descriptors()


def routing_rule_create(
    *, name: str, engine_name: str, actor: Actor, modality: str = "", body_part: str = "",
    study_description_pattern: str = "", enabled: bool = True, created_by: Any = None,
) -> RoutingRule:
    if selectors.engine_registered(engine_name) is None:
        raise InvalidRoutingRule(f"No engine named {engine_name!r}.")
    if study_description_pattern:
        try:
            compile_study_description_pattern(study_description_pattern)
        except PatternNotSupported as error:
            raise InvalidRoutingRule(f"study_description_pattern is not accepted: {error}") from error
    with transaction.atomic():
        _advisory_lock("ai-routing-rules")
        if RoutingRule.objects.count() >= MAX_ROUTING_RULES_PER_TENANT:
            raise RoutingRulesLimitReached(
                f"A tenant has at most {MAX_ROUTING_RULES_PER_TENANT} routing rules; delete one first.")
        rule = RoutingRule.objects.create(
            name=name, engine_name=engine_name, modality=modality.strip().upper(), body_part=body_part.strip().upper(),
            study_description_pattern=study_description_pattern, enabled=enabled, created_by=created_by,
        )
        audit_record(action="ai.routing_rule_create", actor=actor, object_type="ai_routing_rule", object_id=rule.pk,
                     detail={"engine": engine_name, "modality": rule.modality, "body_part": rule.body_part,
                             "pattern": study_description_pattern})
    return rule


def routing_rule_delete(*, rule_id: int, actor: Actor) -> None:
    with transaction.atomic():
        deleted, _ = RoutingRule.objects.filter(pk=rule_id).delete()
        if not deleted:
            raise NotFound("No such routing rule.", code="routing_rule_not_found")
        audit_record(action="ai.routing_rule_delete", actor=actor, object_type="ai_routing_rule", object_id=rule_id)


def _rule_matches(rule: RoutingRule, study_description: str, series: list[dict[str, Any]]) -> bool:
    """Whether the rule starts its engine on a study; the pattern is matched by RE2, in time linear
    in the description (see apps.ai.routing_patterns), never by a backtracking engine."""
    if rule.study_description_pattern:
        try:
            pattern = compile_study_description_pattern(rule.study_description_pattern)
        except PatternNotSupported as error:
            # Saved before patterns were checked for RE2 (e.g. a look-ahead): it cannot be matched
            # safely, so it matches nothing until an admin replaces it.
            logger.warning("Routing rule %s is skipped: its pattern is not supported: %s", rule.pk, error)
            return False
        if not pattern.matches(study_description):
            return False
    for item in series:
        if rule.modality and item["modality"].upper() != rule.modality:
            continue
        if rule.body_part and (item["body_part_examined"] or "").upper() != rule.body_part:
            continue
        return True
    return False


def jobs_route_study(*, study_instance_uid: str) -> list[JobStart]:
    """Start the engine of every enabled routing rule that matches the study (on study stable).

    A rule whose engine is disabled, refuses the study or is over quota is skipped (and logged):
    routing never fails the event that triggered it.
    """
    study = selectors.study_live(study_instance_uid)
    if study is None:
        return []
    series = selectors.image_series_of_study(study_instance_uid)
    started: list[JobStart] = []
    for rule in selectors.routing_rules(enabled_only=True):
        if not _rule_matches(rule, study.study_description, series):
            continue
        try:
            started.append(job_start(
                engine_name=rule.engine_name, study_instance_uid=study_instance_uid, actor=AI_ACTOR,
                trigger=JobTrigger.ROUTING, routing_rule=rule,
            ))
        except DomainError as error:
            logger.info("Routing rule %s skipped study %s: %s", rule.pk, study_instance_uid, error.detail)
    return started


# --- starting and cancelling jobs ------------------------------------------------------------------


@dataclass(frozen=True)
class JobStart:
    job: AIJob
    reused: bool


def _advisory_lock(name: str) -> None:
    """A transaction-scoped lock on `name` within this tenant's schema (serialises check-then-create)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{current_schema_name()}:{name}"])


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
        audit_record(action="ai.job_start", actor=actor, object_type="ai_job", object_id=job.pk,
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
            audit_record(action="ai.job_resend", actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
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
            audit_record(action="ai.job_resend", actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
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
        previous = job.state
        job.state = JobState.CANCELLED
        job.finished_at = timezone.now()
        job.save(update_fields=["state", "finished_at"])
        _access_revoke(job)
        dispatch_next_after_commit()
        audit_record(action="ai.job_cancel", actor=actor, object_type="ai_job", object_id=job.pk,
                     detail={"previous_state": previous})
    return job


# --- running a job ---------------------------------------------------------------------------------


class RunOutcome:
    SKIPPED = "skipped"  # gone, or not queued (already run, cancelled)
    DEFERRED = "deferred"  # the tenant is at its running-jobs cap: try again shortly
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DISPATCHED = "dispatched"  # handed to an external engine, which calls back


def _uses_shared_queue(tenant: Tenant) -> bool:
    return policy_for(tenant).queue_for(WorkKind.AI) == WorkKind.AI.value


def lost_attempt_grace_seconds() -> float:
    """A running job whose attempt started longer ago than its time-out plus this was lost with its
    worker (the hard time limit would have ended a live attempt): a redelivered message may run it again."""
    return float(settings.AI_LOST_ATTEMPT_GRACE_SECONDS)


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
        job.state = JobState.RUNNING
        job.started_at = timezone.now()
        job.attempts += 1
        job.progress = 5
        job.save(update_fields=["state", "started_at", "attempts", "progress"])
        audit_record(action="ai.job_run", actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
                     detail={"attempt": job.attempts, "after_lost_attempt": lost})
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


def _triage(result: EngineResult) -> dict[str, Any]:
    nodules = [finding for finding in result.findings if isinstance(finding, Nodule)]
    if nodules or "nodule_count" in result.summary:
        largest = max((nodule.long_axis_mm for nodule in nodules), default=None)
        triage: dict[str, Any] = {"finding_count": len(nodules), "finding_noun": "nodule",
                                  "largest_mm": None if largest is None else round(largest, 1)}
        triage["flag"] = largest is not None and largest >= TRIAGE_FLAG_DIAMETER_MM
    else:
        triage = {"finding_count": len(result.findings), "finding_noun": "finding", "largest_mm": None,
                  "flag": bool(result.findings)}
    triage["text"] = selectors.triage_text(triage)
    return triage


class InvalidSummary(InvalidInput):
    code = "invalid_summary"
    status = 422


def _summary_number(summary: dict[str, Any], *names: str) -> float | None:
    """The first of `names` present in an engine's summary, as a number (None when absent or null)."""
    for name in names:
        value = summary.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
            raise InvalidSummary(f"summary.{name} must be a non-negative number, not {str(value)[:50]!r}")
        return float(value)
    return None


def triage_of_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Triage of a summary an external engine reported (``finding_count``, ``largest_mm``, ``finding_noun``);
    a summary of another shape is refused (422 ``invalid_summary``), never a server error."""
    count = int(_summary_number(summary, "finding_count", "nodule_count") or 0)
    largest = _summary_number(summary, "largest_mm", "largest_long_axis_mm")
    noun = summary.get("finding_noun", "finding")
    if not isinstance(noun, str) or len(noun) > 64:
        raise InvalidSummary("summary.finding_noun must be a word of at most 64 characters")
    triage: dict[str, Any] = {"finding_count": count, "finding_noun": noun, "largest_mm": largest,
                              "flag": largest is not None and largest >= TRIAGE_FLAG_DIAMETER_MM or
                              (largest is None and count > 0)}
    triage["text"] = selectors.triage_text(triage)
    return triage


def _encode_results(result: EngineResult, datasets: list[Dataset]) -> list[bytes]:
    """SEG and SR of nodule findings, built completely in memory before anything is stored."""
    nodules = [finding for finding in result.findings if isinstance(finding, Nodule)]
    if not nodules or OutputKind.SEGMENTATION not in result.engine.outputs:
        return []
    creator = ResultCreator.from_descriptor(result.engine)
    try:
        segmentation = build_nodule_segmentation(datasets, nodules, creator=creator,
                                                 series_number=SEGMENTATION_SERIES_NUMBER)
        report = build_nodule_measurement_report(datasets, segmentation, nodules, creator=creator,
                                                 series_number=REPORT_SERIES_NUMBER)
    except ValueError as error:
        raise JobFailure("result_encoding_failed", str(error)) from error
    return [to_bytes(segmentation), to_bytes(report)]


def _job_complete(job_id: uuid.UUID | str, *, source_series_uid: str, summary: dict[str, Any],
                  payloads: list[bytes]) -> str:
    """Store the result objects and mark the job succeeded in one transaction."""
    with transaction.atomic():
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != JobState.RUNNING:
            return RunOutcome.CANCELLED
        result_series: list[str] = []
        if payloads:
            report = instances_store(
                parts=[StreamPart(io.BytesIO(payload)) for payload in payloads], actor=AI_ACTOR,
                expected_study_instance_uid=job.study_instance_uid, via="ai",
            )
            if report.failed or len(report.stored) != len(payloads):
                reasons = "; ".join(item.detail for item in report.failed)
                # Raising rolls back the rows indexed above: the job stores nothing.
                raise JobFailure("results_not_stored", f"the archive refused the results: {reasons}")
            result_series = list(dict.fromkeys(item.series_instance_uid for item in report.stored))
        job.state = JobState.SUCCEEDED
        job.progress = 100
        job.finished_at = timezone.now()
        job.summary = summary
        job.source_series_instance_uid = source_series_uid
        job.result_series_instance_uids = result_series
        job.error_code = ""
        job.error_detail = ""
        job.save()
        audit_record(action="ai.job_succeed", actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
                     detail={"results": result_series, "triage": summary.get("triage", {}).get("text", "")})
        dispatch_next_after_commit()
    return RunOutcome.SUCCEEDED


def job_fail(*, job_id: uuid.UUID | str, code: str, detail: str) -> str:
    """Mark a queued or running job failed; nothing it computed is kept."""
    with transaction.atomic():
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return RunOutcome.SKIPPED
        job.state = JobState.FAILED
        job.finished_at = timezone.now()
        job.error_code = code
        job.error_detail = detail[:4000]
        job.save(update_fields=["state", "finished_at", "error_code", "error_detail"])
        _access_revoke(job)
        dispatch_next_after_commit()
        audit_record(action="ai.job_fail", actor=AI_ACTOR, object_type="ai_job", object_id=job.pk,
                     outcome=Outcome.FAILURE, detail={"code": code, "detail": detail[:500]})
    return RunOutcome.FAILED


def _access_revoke(job: AIJob) -> None:
    from apps.ai.external import access_revoke

    access_revoke(job)


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
        job.state = JobState.QUEUED
        job.progress = 0
        job.error_detail = detail[:4000]
        job.save(update_fields=["state", "progress", "error_detail"])
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
        payloads = _encode_results(result, datasets)
        if not _progress(job_id, 90, deadline=deadline):
            return RunOutcome.CANCELLED
        summary = {**dict(result.summary), "triage": _triage(result)}
        return _job_complete(job_id, source_series_uid=str(datasets[0].SeriesInstanceUID), summary=summary,
                             payloads=payloads)
    except JobFailure as failure:
        return job_fail(job_id=job_id, code=failure.code, detail=failure.detail)
