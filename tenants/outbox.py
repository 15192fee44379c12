"""The task outbox: the one durable hand-off from a state change to a Celery task.

A task intent is an `OutboxTask` row written in the caller's transaction, so it commits or rolls
back with the change it follows. After the commit the caller publishes it once (fast, no retry,
never raising: a request answers as quickly as before when the broker is up, and still answers
when it is down). Whatever is still unsent `OUTBOX_RELAY_AFTER_SECONDS` later is published by the
relay (`manage.py outbox_relay`), which needs only the database, with a doubling wait between
failed attempts. Delivery is at least once: a task may run twice (a publish that reached the broker
but whose `sent_at` was never written), so every task is idempotent. See docs/architecture.md,
"Data path of a task".
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery, current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone
from kombu import Exchange, Queue
from kombu.exceptions import KombuError

from tenants.context import public_entered
from tenants.models import OutboxTask

logger = logging.getLogger(__name__)

# Celery options kept on the row and passed again on every publish.
KEPT_OPTIONS = ("soft_time_limit", "time_limit")


def _broker_errors(app: Celery) -> tuple[type[BaseException], ...]:
    """What a publish raises when the broker cannot be reached: kombu's own errors, the transport's
    connection and channel errors (redis-py's for Redis), and socket errors."""
    broker_connection = app.connection_for_write()
    try:
        return (KombuError, OSError, *broker_connection.connection_errors, *broker_connection.channel_errors)
    finally:
        broker_connection.release()


_errors_by_app: dict[int, tuple[type[BaseException], ...]] = {}


def broker_errors() -> tuple[type[BaseException], ...]:
    app = current_app
    errors = _errors_by_app.get(id(app))
    if errors is None:
        errors = _errors_by_app[id(app)] = _broker_errors(app)
    return errors


def outbox_task_add(
    *,
    task_name: str,
    schema_name: str,
    queue: str,
    args: tuple[Any, ...] | list[Any] = (),
    kwargs: dict[str, Any] | None = None,
    countdown: float | None = None,
    options: dict[str, Any] | None = None,
) -> OutboxTask:
    """Write the intent in the current transaction (or on its own, outside one) and publish it
    once that transaction has committed."""
    unknown = set(options or {}) - set(KEPT_OPTIONS)
    if unknown:
        raise ValueError(f"Options the outbox does not keep: {sorted(unknown)}")
    now = timezone.now()
    # The table is in the public schema, which is on every tenant's search path: the row is written
    # on the caller's connection and in its transaction, whatever schema the caller is in.
    row = OutboxTask.objects.create(
        task_id=uuid.uuid4(), task_name=task_name, args=list(args), kwargs=kwargs or {},
        options=options or {}, schema_name=schema_name, queue=queue,
        eta=now + timedelta(seconds=countdown) if countdown else None, created_at=now,
        next_attempt_at=now + timedelta(seconds=settings.OUTBOX_RELAY_AFTER_SECONDS),
    )
    transaction.on_commit(lambda: outbox_task_publish_after_commit(row=row))
    return row


def _queue_named(name: str) -> Queue:
    """The queue as Celery makes it for a queue name it was not configured with."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def _publish(row: OutboxTask) -> None:
    """One attempt, no retry and no wait for a broker that does not answer: the relay is the retry.

    The connection comes from the app's pool; one that failed is dropped rather than given back,
    so the next publish connects afresh once the broker is back.
    """
    with current_app.pool.acquire(block=True) as broker_connection:
        try:
            broker_connection.ensure_connection(max_retries=0)
            # Declared on every publish, not once per connection: a broker that came back empty has
            # lost the queue's binding while the client reconnected underneath, and a message sent
            # to an unbound queue is dropped (Redis transport). One idempotent command.
            _queue_named(row.queue).bind(broker_connection.default_channel).declare()
            current_app.send_task(
                row.task_name, args=row.args, kwargs=row.kwargs, task_id=str(row.task_id), queue=row.queue,
                eta=row.eta, headers={"_schema_name": row.schema_name}, connection=broker_connection, retry=False,
                **{name: row.options[name] for name in KEPT_OPTIONS if name in row.options},
            )
        except broker_errors():
            broker_connection.collect()
            raise


def outbox_task_publish_after_commit(*, row: OutboxTask) -> bool:
    """The caller's one fast publish after its commit. A broker that cannot be reached is logged and
    left to the relay, never raised: the change it follows is already committed."""
    try:
        _publish(row)
    except broker_errors() as error:
        logger.warning("Broker unreachable: task %s (%s) stays in the outbox for the relay: %s",
                       row.task_name, row.task_id, error)
        OutboxTask.objects.filter(pk=row.pk, sent_at__isnull=True).update(
            attempts=F("attempts") + 1, last_error=_error_text(error),
        )
        return False
    _mark_sent(row)
    return True


def _mark_sent(row: OutboxTask) -> None:
    """Set `sent_at` without waiting for the WAL flush: a mark lost in a crash only means the relay
    publishes the row once more, which at-least-once delivery allows, and the request does not pay
    a second disk flush after its own commit."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        OutboxTask.objects.filter(pk=row.pk, sent_at__isnull=True).update(sent_at=timezone.now())


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def retry_delay_seconds(attempts: int) -> float:
    """The wait before the next publish after `attempts` failed ones: doubling, capped."""
    return float(min(settings.OUTBOX_RELAY_AFTER_SECONDS * 2 ** max(attempts - 1, 0),
                     settings.OUTBOX_RELAY_BACKOFF_MAX_SECONDS))


@dataclass(frozen=True)
class RelayPass:
    sent: int
    failed: int


def outbox_relay_once(*, now: datetime | None = None, batch_size: int | None = None) -> RelayPass:
    """Publish the pending rows that are due, oldest first, and mark them sent.

    Rows are claimed with SKIP LOCKED, so several relays can run side by side. After the first
    publish that fails for want of a broker the rest of the batch waits for the next pass (they
    would fail the same way); the failed row is given its next attempt time.
    """
    now = now or timezone.now()
    sent = failed = 0
    with public_entered(), transaction.atomic():
        rows = list(
            OutboxTask.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[: batch_size or settings.OUTBOX_RELAY_BATCH_SIZE]
        )
        for row in rows:
            try:
                _publish(row)
            except broker_errors() as error:
                row.attempts += 1
                row.last_error = _error_text(error)
                row.next_attempt_at = now + timedelta(seconds=retry_delay_seconds(row.attempts))
                row.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                failed += 1
                break
            row.sent_at = timezone.now()
            row.save(update_fields=["sent_at"])
            sent += 1
    return RelayPass(sent=sent, failed=failed)


def outbox_sent_prune(*, now: datetime | None = None, limit: int = 10_000) -> int:
    """Remove rows sent more than OUTBOX_KEEP_SENT_HOURS ago (kept that long to be looked at)."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.OUTBOX_KEEP_SENT_HOURS)
    with public_entered():
        old = OutboxTask.objects.filter(sent_at__lt=cutoff).order_by("sent_at").values_list("pk", flat=True)[:limit]
        deleted, _ = OutboxTask.objects.filter(pk__in=list(old)).delete()
    return deleted


PRUNE_EVERY_SECONDS = 600.0


def outbox_relay_run(
    *, should_stop: Callable[[], bool], interval_seconds: float | None = None,
    after_pass: Callable[[], None] | None = None,
) -> None:
    """The relay loop: a pass every interval (at once again after a full batch), a prune now and then."""
    interval = float(interval_seconds if interval_seconds is not None else settings.OUTBOX_RELAY_INTERVAL_SECONDS)
    last_prune = 0.0
    while not should_stop():
        try:
            result = outbox_relay_once()
        except (OperationalError, InterfaceError):
            # The database is away: nothing can be lost meanwhile (nothing can commit either).
            logger.warning("Outbox relay: database unreachable, trying again", exc_info=True)
            close_old_connections()
            time.sleep(interval)
            continue
        if after_pass is not None:
            after_pass()
        if result.sent or result.failed:
            logger.info("Outbox relay: %d sent, %d failed (broker unreachable)", result.sent, result.failed)
        if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
            pruned = outbox_sent_prune()
            if pruned:
                logger.info("Outbox relay: %d sent rows pruned", pruned)
            last_prune = time.monotonic()
        if result.sent < settings.OUTBOX_RELAY_BATCH_SIZE or result.failed:
            time.sleep(interval)
