"""What every AI use case shares: the AI actor, the limits read from settings, the domain errors and
the run outcomes."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection

from apps.ai.models import AIJob
from apps.audit.services import Actor
from apps.core.errors import Conflict, DomainError, InvalidInput, NotFound
from tenants.context import current_schema_name
from tenants.deployment import WorkKind, policy_for
from tenants.models import Tenant

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


def _advisory_lock(name: str) -> None:
    """A transaction-scoped lock on `name` within this tenant's schema (serialises check-then-create)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{current_schema_name()}:{name}"])


def _access_revoke(job: AIJob) -> None:
    from apps.ai.external import access_revoke

    access_revoke(job)
