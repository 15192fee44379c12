"""Celery task of the AI app: a thin wrapper that runs one job in its tenant's schema.

Time-out: the run checks the engine's time-out between its steps and fails the job with code
``timeout`` once it has passed; a few seconds later the task's soft time limit (set per call by
``services.job_enqueue``) ends a job stuck inside one step, with the same code. Faults that can pass
(storage or database unavailable) put the job back in the queue with backoff, up to
``AI_JOB_MAX_ATTEMPTS`` attempts; while the database is out even that cannot be written, so the run
message itself retries (1, 2, 4 … 128 s, about 4 minutes) until it can. Fair share on the shared queue is decided before a message is sent
(``services.jobs_dispatch`` keeps at most the tenant's cap of jobs in flight); should a job still find
its tenant at the cap when it starts, it is sent to the back of the queue again.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from apps.ai import selectors, services
from apps.ai.external import EngineUnreachable
from apps.core.retries import (
    DATABASE_ERRORS,
    OUTLAST_A_RESTART_BACKOFF_MAX_SECONDS,
    OUTLAST_A_RESTART_RETRIES,
)
from apps.storage.backends import StorageUnavailable
from tenants.context import current_tenant, tenant_entered
from tenants.selectors import tenants_active

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (StorageUnavailable, *DATABASE_ERRORS, ConnectionError, TimeoutError)


@shared_task(bind=True, name="apps.ai.tasks.ai_job_run", acks_late=True, soft_time_limit=600, time_limit=630,
             max_retries=OUTLAST_A_RESTART_RETRIES)
def ai_job_run(self: Task, job_id: str, fault_code: str = "", fault_detail: str = "") -> str:
    """Run the job; `fault_code` set means this message is back only to settle the transient fault
    its first delivery met (the job still `running`) now that the database may answer again."""
    if not fault_code:
        try:
            outcome = services.job_run(job_id=job_id)
        except SoftTimeLimitExceeded:
            return services.job_fail(job_id=job_id, code="timeout",
                                     detail="the engine did not finish within its time-out")
        except TRANSIENT_ERRORS as error:
            fault_code = "engine_unreachable" if isinstance(error, EngineUnreachable) else "transient_fault_persisted"
            fault_detail = str(error) or repr(error)
        else:
            if outcome == services.RunOutcome.DEFERRED:
                _send_again(job_id, countdown=services.deferral_seconds())
            return outcome
    try:
        return _settle_transient_fault(job_id, code=fault_code, detail=fault_detail)
    except DATABASE_ERRORS as error:
        # Nothing can be written, the outbox included: the broker brings this message back.
        raise self.retry(args=[job_id], kwargs={"fault_code": fault_code, "fault_detail": fault_detail},
                         countdown=min(OUTLAST_A_RESTART_BACKOFF_MAX_SECONDS, 2 ** self.request.retries), exc=error) from error


def _settle_transient_fault(job_id: str, *, code: str, detail: str) -> str:
    """Put the job back in the queue with backoff, or fail it once its attempts are used up."""
    if not services.job_requeue_after_transient_fault(job_id=job_id, detail=detail):
        return services.job_fail(job_id=job_id, code=code, detail=detail)
    job = selectors.job_get(job_id)
    attempts = job.attempts if job else 1
    _send_again(job_id, countdown=min(60.0, 2.0 ** attempts))
    return "retrying"


@shared_task(name="apps.ai.tasks.ai_unclaimed_jobs_resend", acks_late=True)
def ai_unclaimed_jobs_resend(older_than_seconds: float | None = None) -> int:
    """Periodic, in the public schema: in every active tenant, send again the run messages of jobs
    dispatched long ago that no worker has claimed (services.jobs_resend_unclaimed) and of running
    jobs whose worker was lost (services.jobs_resend_lost_attempts)."""
    resent = 0
    for tenant in tenants_active():
        with tenant_entered(tenant):
            resent += services.jobs_resend_unclaimed(older_than_seconds=older_than_seconds)
            resent += services.jobs_resend_lost_attempts()
    return resent


@shared_task(name="apps.ai.tasks.ai_external_job_expire", acks_late=True)
def ai_external_job_expire(job_id: str) -> str:
    return services.job_expire_if_running(job_id=job_id)


def _send_again(job_id: str, *, countdown: float) -> None:
    engine = None
    job = selectors.job_get(job_id)
    if job is not None:
        engine = selectors.engine_registered(job.engine_name)
    timeout = engine.timeout_seconds if engine else 600.0
    services.job_enqueue(job_id=job_id, tenant=current_tenant(), timeout_seconds=timeout, countdown=countdown)
