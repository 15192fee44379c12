"""The task outbox (tenants.outbox): an intent commits or rolls back with the caller's transaction,
is published after the commit, and the relay publishes again what is still unsent, with a longer
wait after each failed attempt. Messages go to the real (shared test) broker, on a queue no worker
serves, so a test can look at exactly what was sent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.models import OutboxTask
from tenants.outbox import outbox_relay_once, outbox_sent_prune, outbox_task_add, retry_delay_seconds

REPO_ROOT = Path(__file__).resolve().parents[2]
TASK = "apps.operations.tasks.beat_heartbeat"


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"outbox-test-{uuid.uuid4().hex[:10]}"
    yield name
    broker().delete(name)


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def messages_on(queue: str) -> list[dict]:
    return [json.loads(raw) for raw in broker().lrange(queue, 0, -1)]


def pending_row(platform, queue: str, *, due_at) -> OutboxTask:
    with platform.schema():
        return OutboxTask.objects.create(
            task_id=uuid.uuid4(), task_name=TASK, args=[1], kwargs={}, options={},
            schema_name=platform.tenants["clinic_a"].schema_name, queue=queue, created_at=due_at,
            next_attempt_at=due_at,
        )


def reloaded(platform, row: OutboxTask) -> OutboxTask:
    with platform.schema():
        return OutboxTask.objects.get(pk=row.pk)


def test_an_intent_in_a_transaction_that_rolls_back_leaves_no_row_and_sends_nothing(platform, queue):
    class RolledBack(Exception):
        pass

    with platform.schema("clinic_a"), pytest.raises(RolledBack), transaction.atomic():
        row = outbox_task_add(task_name=TASK, schema_name=platform.tenants["clinic_a"].schema_name, queue=queue)
        raise RolledBack
    with platform.schema():
        assert not OutboxTask.objects.filter(task_id=row.task_id).exists()
    assert messages_on(queue) == []


def test_an_intent_is_sent_once_its_transaction_commits_and_marked_sent(platform, queue):
    schema = platform.tenants["clinic_a"].schema_name
    with platform.schema("clinic_a"):
        with transaction.atomic():
            row = outbox_task_add(task_name=TASK, schema_name=schema, queue=queue, args=(7,), kwargs={"b": 2})
            assert messages_on(queue) == []
        [message] = messages_on(queue)
    assert message["headers"]["id"] == str(row.task_id)
    assert message["headers"]["task"] == TASK
    assert message["headers"]["_schema_name"] == schema
    assert reloaded(platform, row).sent_at is not None


def test_the_relay_sends_a_due_unsent_row_and_marks_it_sent(platform, queue):
    row = pending_row(platform, queue, due_at=timezone.now() - timedelta(days=3650))
    with platform.schema():
        outbox_relay_once()
    [message] = messages_on(queue)
    assert message["headers"]["id"] == str(row.task_id)
    assert reloaded(platform, row).sent_at is not None


def test_the_relay_leaves_a_row_that_is_not_due_yet(platform, queue):
    row = pending_row(platform, queue, due_at=timezone.now() + timedelta(hours=1))
    with platform.schema():
        outbox_relay_once()
    assert messages_on(queue) == []
    assert reloaded(platform, row).sent_at is None
    with platform.schema():
        OutboxTask.objects.filter(pk=row.pk).delete()


def test_a_failed_relay_attempt_is_counted_and_the_next_one_waits_twice_as_long(platform, queue, monkeypatch):
    def broker_refuses(row):
        raise ConnectionRefusedError("the broker is away")

    monkeypatch.setattr("tenants.outbox._publish", broker_refuses)
    row = pending_row(platform, queue, due_at=timezone.now() - timedelta(days=7300))
    first_pass = timezone.now()
    with platform.schema():
        outbox_relay_once(now=first_pass)
    after_one = reloaded(platform, row)
    assert (after_one.attempts, after_one.sent_at) == (1, None)
    assert after_one.last_error == "ConnectionRefusedError: the broker is away"
    assert after_one.next_attempt_at == first_pass + timedelta(seconds=retry_delay_seconds(1))
    second_pass = after_one.next_attempt_at
    with platform.schema():
        outbox_relay_once(now=second_pass)
    after_two = reloaded(platform, row)
    assert after_two.attempts == 2
    assert after_two.next_attempt_at == second_pass + timedelta(seconds=retry_delay_seconds(2))
    assert retry_delay_seconds(2) == 2 * retry_delay_seconds(1)
    with platform.schema():
        OutboxTask.objects.filter(pk=row.pk).delete()


def test_the_wait_between_failed_attempts_stops_growing_at_its_maximum():
    assert retry_delay_seconds(60) == settings.OUTBOX_RELAY_BACKOFF_MAX_SECONDS


def test_sent_rows_are_pruned_after_they_have_been_kept_long_enough(platform, queue):
    now = timezone.now()
    old = pending_row(platform, queue, due_at=now)
    recent = pending_row(platform, queue, due_at=now)
    with platform.schema():
        OutboxTask.objects.filter(pk=old.pk).update(sent_at=now - timedelta(hours=settings.OUTBOX_KEEP_SENT_HOURS + 1))
        OutboxTask.objects.filter(pk=recent.pk).update(sent_at=now)
        outbox_sent_prune(now=now)
        assert list(OutboxTask.objects.filter(pk__in=[old.pk, recent.pk]).values_list("pk", flat=True)) == [recent.pk]
        OutboxTask.objects.filter(pk=recent.pk).delete()


def test_no_code_but_the_outbox_sends_a_task_to_the_broker():
    direct_sends = (".delay(", ".apply_async(", "send_task(")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {needle}"
        for folder in ("apps", "tenants", "config")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if path != REPO_ROOT / "tenants" / "outbox.py"
        for needle in direct_sends
        if needle in path.read_text()
    ]
    assert offenders == []


def test_a_task_name_no_worker_knows_is_refused_before_anything_is_written(platform):
    from tenants.deployment import WorkKind
    from tenants.queues import enqueue

    with platform.schema("clinic_a"):
        before = OutboxTask.objects.count()
        with pytest.raises(LookupError, match="apps.archive.tasks.no_such_task"):
            enqueue("apps.archive.tasks.no_such_task", tenant=platform.tenants["clinic_a"], work=WorkKind.INGEST)
        assert OutboxTask.objects.count() == before
