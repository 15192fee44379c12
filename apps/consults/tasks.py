"""Thin Celery wrappers for the consult workflow (`workflow` queue of the clinic or hospital)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.consults import delivery, services, webhooks
from apps.storage.backends import StorageUnavailable


@shared_task(name="apps.consults.tasks.consult_deliver_task", bind=True, acks_late=True,
             autoretry_for=(OperationalError, StorageUnavailable, ConnectionError), retry_backoff=True,
             retry_backoff_max=300, max_retries=8)
def consult_deliver_task(self: object, route_id: str) -> str:
    return delivery.consult_deliver(route_id=route_id)


@shared_task(name="apps.consults.tasks.consults_flag_overdue", acks_late=True)
def consults_flag_overdue() -> int:
    return services.consults_escalate_overdue()


@shared_task(name="apps.consults.tasks.webhook_deliver_task", acks_late=True)
def webhook_deliver_task(delivery_id: int) -> str:
    status, retry_in = webhooks.webhook_deliver(delivery_id=delivery_id)
    return "retrying" if retry_in is not None else status
