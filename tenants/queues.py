"""Enqueue a task on the queue the tenant's deployment policy names for that kind of work.

Every task goes through the task outbox (tenants.outbox): the intent is a row written in the
caller's transaction, published after the commit, and published again by the relay if the broker
was unreachable. Nothing else in the code talks to the broker to send a task.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from celery.result import AsyncResult

from tenants.deployment import WorkKind, policy_for
from tenants.models import Tenant
from tenants.outbox import outbox_task_add


def enqueue(
    task: str,
    *,
    tenant: Tenant,
    work: WorkKind,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    countdown: float | None = None,
    soft_time_limit: float | None = None,
    time_limit: float | None = None,
) -> AsyncResult:
    """Queue the task named `task` in the tenant's schema, on the tenant's queue for `work`.

    Tasks are named, not imported, so a service never imports the tasks that call it (docs/conventions.md);
    a name no worker would know is refused here rather than dropped by the worker.

    The intent joins the current transaction, if there is one, and is sent once it commits (the
    worker then finds the rows it is given IDs of); outside a transaction it is sent at once. A
    broker that cannot be reached delays the task, never loses it, and raises nothing here.
    """
    if task not in current_app.tasks:
        # A web process imports task modules only when first needed (a worker does at start).
        current_app.loader.import_default_modules()
        if task not in current_app.tasks:
            raise LookupError(f"no task is registered as {task!r}")
    options: dict[str, Any] = {}
    if soft_time_limit is not None:
        options["soft_time_limit"] = soft_time_limit
    if time_limit is not None:
        options["time_limit"] = time_limit
    row = outbox_task_add(
        task_name=task, schema_name=tenant.schema_name, queue=policy_for(tenant).queue_for(work),
        args=args, kwargs=kwargs, countdown=countdown, options=options,
    )
    return AsyncResult(str(row.task_id), app=current_app)


def enqueue_on_commit(
    task: str, *, tenant: Tenant, work: WorkKind, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> None:
    """Queue `task` to be sent once the current transaction commits (the same as `enqueue`, which
    always waits for the commit; kept so callers say what they rely on)."""
    enqueue(task, tenant=tenant, work=work, args=args, kwargs=kwargs)


def enqueue_for_every_active_tenant(task: str, *, work: WorkKind) -> int:
    """A periodic sweep's fan-out: queue `task` once per active tenant, each on its own queue. Returns
    how many were queued."""
    from tenants.selectors import tenants_active

    tenants = tenants_active()
    for tenant in tenants:
        enqueue(task, tenant=tenant, work=work)
    return len(tenants)
