"""AI use cases: configure engines and routing rules, start, run, cancel and finish jobs.

Each function owns its transaction and writes its audit event. ``job_run`` is what the Celery
task calls; it is safe to run twice (only a queued job is claimed) and stores results only in
the transaction that marks the job succeeded, so a failed or cancelled job stores nothing.

One module per concern: `base` (the AI actor, limits, errors, run outcomes), `engines`, `routing`,
`jobs` (start, dispatch, resend, cancel), `running` (claim, run, fail, expire, requeue) and
`results` (triage, result objects, success). Callers import from this package.
"""

from __future__ import annotations

from apps.ai.services.base import (
    AI_ACTOR,
    MAX_ROUTING_RULES_PER_TENANT,
    REPORT_SERIES_NUMBER,
    SEGMENTATION_SERIES_NUMBER,
    TRIAGE_FLAG_DIAMETER_MM,
    AIJobQuotaExceeded,
    EngineDisabled,
    EngineNotFound,
    InvalidRoutingRule,
    JobAlreadyFinished,
    JobFailure,
    JobNotFound,
    RoutingRulesLimitReached,
    RunOutcome,
    StudyNotAccepted,
    deferral_seconds,
    lost_attempt_grace_seconds,
    max_attempts,
    max_running_jobs_per_tenant,
    unclaimed_resend_seconds,
)
from apps.ai.services.engines import engine_define, engine_setting_update
from apps.ai.services.jobs import (
    STUCK_STEP_GRACE_SECONDS,
    JobStart,
    dispatch_next_after_commit,
    job_cancel,
    job_enqueue,
    job_enqueue_expiry,
    job_start,
    jobs_dispatch,
    jobs_resend_lost_attempts,
    jobs_resend_unclaimed,
)
from apps.ai.services.results import InvalidSummary, triage_of_summary
from apps.ai.services.routing import _rule_matches, jobs_route_study, routing_rule_create, routing_rule_delete
from apps.ai.services.running import (
    job_expire_if_running,
    job_fail,
    job_requeue_after_transient_fault,
    job_run,
)

__all__ = [
    "AI_ACTOR", "MAX_ROUTING_RULES_PER_TENANT", "REPORT_SERIES_NUMBER", "SEGMENTATION_SERIES_NUMBER",
    "STUCK_STEP_GRACE_SECONDS", "TRIAGE_FLAG_DIAMETER_MM", "AIJobQuotaExceeded", "EngineDisabled", "EngineNotFound",
    "InvalidRoutingRule", "InvalidSummary", "JobAlreadyFinished", "JobFailure", "JobNotFound", "JobStart",
    "RoutingRulesLimitReached", "RunOutcome", "StudyNotAccepted", "_rule_matches", "deferral_seconds",
    "dispatch_next_after_commit", "engine_define", "engine_setting_update", "job_cancel", "job_enqueue",
    "job_enqueue_expiry", "job_expire_if_running", "job_fail", "job_requeue_after_transient_fault", "job_run",
    "job_start", "jobs_dispatch", "jobs_resend_lost_attempts", "jobs_resend_unclaimed", "jobs_route_study",
    "lost_attempt_grace_seconds", "max_attempts", "max_running_jobs_per_tenant", "routing_rule_create",
    "routing_rule_delete", "triage_of_summary", "unclaimed_resend_seconds",
]
