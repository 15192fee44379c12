"""Thin Celery wrappers for the consult workflow (`workflow` queue of the clinic or hospital)."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import OperationalError

from apps.consults import delivery, services, webhooks
from apps.core.errors import DomainError
from apps.storage.backends import StorageUnavailable

logger = logging.getLogger(__name__)

# Faults that can pass (database, storage or network briefly away): the delivery is tried again.
DELIVERY_TRANSIENT_ERRORS = (OperationalError, StorageUnavailable, ConnectionError, TimeoutError)
DELIVERY_MAX_RETRIES = 8
DELIVERY_RETRY_BACKOFF_MAX_SECONDS = 300


def _retry_countdown(retries: int) -> int:
    return int(min(DELIVERY_RETRY_BACKOFF_MAX_SECONDS, 2 ** (retries + 1)))


@shared_task(name="apps.consults.tasks.consult_deliver_task", bind=True, acks_late=True,
             max_retries=DELIVERY_MAX_RETRIES, soft_time_limit=600)
def consult_deliver_task(self: Task, route_id: str) -> str:
    """Deliver the report; a transient fault is retried with backoff, and a delivery that cannot
    succeed (a domain error, or transient faults past the last retry) is recorded on the consult
    with its reason, so it never stays `finalized` without anyone knowing."""
    try:
        return delivery.consult_deliver(route_id=route_id)
    except DomainError as error:
        logger.warning("Delivery of consult %s failed: %s", route_id, error)
        return delivery.consult_delivery_failure_record(route_id=route_id, reason=str(error))
    except DELIVERY_TRANSIENT_ERRORS as error:
        if self.request.retries < DELIVERY_MAX_RETRIES:
            raise self.retry(exc=error, countdown=_retry_countdown(self.request.retries)) from error
        logger.warning("Delivery of consult %s failed after %s attempts: %s", route_id, self.request.retries + 1, error)
        return delivery.consult_delivery_failure_record(
            route_id=route_id,
            reason=f"Still failing after {self.request.retries + 1} attempts: {type(error).__name__}: {error}",
        )


@shared_task(name="apps.consults.tasks.consults_flag_overdue", acks_late=True)
def consults_flag_overdue() -> int:
    return services.consults_escalate_overdue()


@shared_task(name="apps.consults.tasks.webhook_deliver_task", acks_late=True)
def webhook_deliver_task(delivery_id: int) -> str:
    status, retry_in = webhooks.webhook_deliver(delivery_id=delivery_id)
    return "retrying" if retry_in is not None else status
