"""Per-tenant webhooks: each consult event is logged as a delivery and POSTed, signed, by a
`workflow` task that retries with exponential backoff and finally marks the delivery failed.

Receivers verify `X-Imaging-Cloud-Signature: sha256=<hex HMAC-SHA256 of the raw body with the
endpoint's secret>`. Payloads name the consult and its state, never patient data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import Actor, audit_record
from apps.consults.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from apps.core.errors import InvalidInput
from tenants.queues import WorkKind, current_tenant, enqueue, enqueue_on_commit

SIGNATURE_HEADER = "X-Imaging-Cloud-Signature"
TIMEOUT_SECONDS = (3.0, 10.0)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def max_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 6))


def retry_delay_seconds(attempts: int) -> float:
    return float(getattr(settings, "WEBHOOK_RETRY_BASE_SECONDS", 10.0)) * 2 ** (attempts - 1)


@transaction.atomic
def webhook_endpoint_create(*, url: str, actor: Actor, description: str = "") -> WebhookEndpoint:
    if not url.lower().startswith(("https://", "http://")):
        raise InvalidInput("A webhook URL must be http(s).", code="invalid_webhook_url")
    endpoint = WebhookEndpoint.objects.create(url=url, secret=secrets.token_urlsafe(32), description=description)
    audit_record(action="webhook.create", actor=actor, object_type="webhook", object_id=endpoint.pk,
                 detail={"url": url})
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: int, actor: Actor) -> None:
    deleted, _ = WebhookEndpoint.objects.filter(pk=endpoint_id).delete()
    if deleted:
        audit_record(action="webhook.delete", actor=actor, object_type="webhook", object_id=endpoint_id)


def webhooks_emit(*, event: str, payload: dict[str, Any]) -> int:
    """Log one delivery per active endpoint of the current tenant and send each after commit."""
    from apps.consults.tasks import webhook_deliver_task

    tenant = current_tenant()
    count = 0
    for endpoint in WebhookEndpoint.objects.filter(active=True):
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event, payload={"event": event, **payload})
        enqueue_on_commit(webhook_deliver_task, tenant=tenant, work=WorkKind.WORKFLOW, args=(delivery.pk,))
        count += 1
    return count


def webhook_deliver(*, delivery_id: int) -> tuple[str, float | None]:
    """One attempt; a failed one queues the next. Returns (status, seconds until the next attempt or None)."""
    from apps.consults.tasks import webhook_deliver_task

    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update().select_related("endpoint")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.status != WebhookDeliveryStatus.PENDING:
            return ("gone" if delivery is None else delivery.status), None
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
        endpoint, event, payload, attempt = delivery.endpoint, delivery.event, delivery.payload, delivery.attempts
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", "X-Imaging-Cloud-Event": event,
               "X-Imaging-Cloud-Delivery": str(delivery_id), SIGNATURE_HEADER: signature(endpoint.secret, body)}
    status_code: int | None = None
    error = ""
    try:
        response = requests.post(endpoint.url, data=body, headers=headers, timeout=TIMEOUT_SECONDS,
                                 allow_redirects=False)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except requests.RequestException as failure:
        error = f"{type(failure).__name__}: {failure}"[:500]
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.last_status_code, delivery.last_error = status_code, error
        next_in: float | None = None
        if not error:
            delivery.status, delivery.delivered_at = WebhookDeliveryStatus.SUCCEEDED, timezone.now()
        elif attempt >= max_attempts():
            delivery.status = WebhookDeliveryStatus.FAILED
            audit_record(action="webhook.failed", actor=Actor.system("webhooks"), object_type="webhook",
                         object_id=delivery.endpoint_id, detail={"delivery": delivery_id, "event": event,
                                                                 "error": error, "attempts": attempt})
        else:
            next_in = retry_delay_seconds(attempt)
            # The next attempt's intent commits with this attempt's outcome (tenants.outbox), so a
            # worker lost right after it cannot leave the delivery pending with nothing queued.
            enqueue(webhook_deliver_task, tenant=current_tenant(), work=WorkKind.WORKFLOW, args=(delivery_id,),
                    countdown=next_in)
        delivery.save()
    return delivery.status, next_in
