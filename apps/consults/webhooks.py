"""Per-tenant webhooks: each consult event is logged as a delivery and POSTed, signed, by a
`workflow` task that retries with exponential backoff and finally marks the delivery failed.

Every request carries `X-Imaging-Cloud-Delivery` (the delivery's id, the same on every retry),
`X-Imaging-Cloud-Timestamp` (Unix seconds when this attempt was signed) and
`X-Imaging-Cloud-Signature: sha256=<hex HMAC-SHA256 with the endpoint's secret of
"<timestamp>.<delivery id>.<raw body>">`. A receiver recomputes it, refuses a timestamp outside its
tolerance window (a replay) and may drop a delivery id it has already handled (a retry of a
delivery it took). Payloads name the consult and its state, never patient data. Destinations are
checked against the network policy in apps.consults.webhook_transport (docs/security.md, Webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from urllib3.exceptions import HTTPError as TransportError

from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record, audited_move
from apps.consults.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from apps.consults.state_machine import WEBHOOK_DELIVERY_WORKFLOW
from apps.consults.webhook_transport import (
    DestinationRefused,
    destination_check_on_save,
    destination_resolve,
    error_class,
    post_to_destination,
    status_error_class,
)
from apps.core.errors import InvalidInput
from tenants.context import current_tenant
from tenants.queues import WorkKind, enqueue, enqueue_on_commit

SIGNATURE_HEADER = "X-Imaging-Cloud-Signature"
TIMESTAMP_HEADER = "X-Imaging-Cloud-Timestamp"
DELIVERY_HEADER = "X-Imaging-Cloud-Delivery"
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
# What docs/security.md suggests receivers accept: older signatures are treated as replays.
RECOMMENDED_TOLERANCE_SECONDS = 300


def signature(secret: str, *, timestamp: int, delivery_id: int | str, body: bytes) -> str:
    signed = f"{timestamp}.{delivery_id}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_valid(
    secret: str, *, signature_header: str, timestamp_header: str, delivery_id: str, body: bytes,
    now: float | None = None, tolerance_seconds: int = RECOMMENDED_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature matches and was made within the tolerance window."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp=timestamp, delivery_id=delivery_id, body=body)
    return hmac.compare_digest(expected, signature_header)


def max_attempts() -> int:
    return settings.WEBHOOK_MAX_ATTEMPTS


def retry_delay_seconds(attempts: int) -> float:
    return float(settings.WEBHOOK_RETRY_BASE_SECONDS) * 2 ** (attempts - 1)


@transaction.atomic
def webhook_endpoint_create(*, url: str, actor: Actor, description: str = "") -> WebhookEndpoint:
    destination_check_on_save(url)
    endpoint = WebhookEndpoint.objects.create(url=url, secret=secrets.token_urlsafe(32), description=description)
    audit_record(action=AuditAction.WEBHOOK_CREATE, actor=actor, object_type="webhook", object_id=endpoint.pk,
                 detail={"url": url})
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: int, actor: Actor) -> None:
    deleted, _ = WebhookEndpoint.objects.filter(pk=endpoint_id).delete()
    if deleted:
        audit_record(action=AuditAction.WEBHOOK_DELETE, actor=actor, object_type="webhook", object_id=endpoint_id)


def webhooks_emit(*, event: str, payload: dict[str, Any]) -> int:
    """Log one delivery per active endpoint of the current tenant and send each after commit."""
    tenant = current_tenant()
    count = 0
    for endpoint in WebhookEndpoint.objects.filter(active=True):
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event, payload={"event": event, **payload})
        enqueue_on_commit("apps.consults.tasks.webhook_deliver_task", tenant=tenant, work=WorkKind.WORKFLOW, args=(delivery.pk,))
        count += 1
    return count


def webhook_deliver(*, delivery_id: int) -> tuple[str, float | None]:
    """One attempt; a failed one queues the next. Returns (status, seconds until the next attempt or None)."""
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update().select_related("endpoint")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.status != WebhookDeliveryStatus.PENDING:
            return ("gone" if delivery is None else delivery.status), None
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
        endpoint, event, payload, attempt = delivery.endpoint, delivery.event, delivery.payload, delivery.attempts
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "X-Imaging-Cloud-Event": event,
               DELIVERY_HEADER: str(delivery_id), TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: signature(endpoint.secret, timestamp=timestamp, delivery_id=delivery_id, body=body)}
    status_code: int | None = None
    error = ""
    # A destination on a forbidden network will not become allowed by retrying: fail it now.
    refused = False
    try:
        destination = destination_resolve(endpoint.url)
        status_code = post_to_destination(destination, body=body, headers=headers,
                                          connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                          read_timeout=READ_TIMEOUT_SECONDS)
        error = status_error_class(status_code)
    except DestinationRefused as failure:
        error, refused = error_class(failure), True
    except InvalidInput:
        error, refused = "invalid_url", True
    except (TransportError, OSError, UnicodeError) as failure:
        error = error_class(failure)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status != WebhookDeliveryStatus.PENDING:  # another run of this task ended it meanwhile
            return delivery.status, None
        outcome: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
        next_in: float | None = None
        webhooks_actor = Actor.system("webhooks")
        if not error:
            audited_move(delivery, WEBHOOK_DELIVERY_WORKFLOW, "succeed", actor=webhooks_actor,
                         action=AuditAction.WEBHOOK_DELIVER, object_type="webhook", object_id=delivery.endpoint_id,
                         detail={"delivery": delivery_id, "event": event, "attempts": attempt},
                         delivered_at=timezone.now(), **outcome)
        elif refused or attempt >= max_attempts():
            audited_move(delivery, WEBHOOK_DELIVERY_WORKFLOW, "fail", actor=webhooks_actor,
                         action=AuditAction.WEBHOOK_FAILED, object_type="webhook", object_id=delivery.endpoint_id,
                         detail={"delivery": delivery_id, "event": event, "error": error, "attempts": attempt},
                         **outcome)
        else:
            WebhookDelivery.objects.filter(pk=delivery_id).update(**outcome)  # still pending: not a state change
            next_in = retry_delay_seconds(attempt)
            # The next attempt's intent commits with this attempt's outcome (tenants.outbox), so a
            # worker lost right after it cannot leave the delivery pending with nothing queued.
            enqueue("apps.consults.tasks.webhook_deliver_task", tenant=current_tenant(), work=WorkKind.WORKFLOW, args=(delivery_id,),
                    countdown=next_in)
    return delivery.status, next_in
