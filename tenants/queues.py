"""Enqueue a task on the queue the tenant's deployment policy names for that kind of work."""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.result import AsyncResult
from django.db import transaction
from django_tenants.utils import schema_context

from tenants.connection import tenant_connection
from tenants.deployment import WorkKind, policy_for
from tenants.models import Tenant


def enqueue(
    task: Task, *, tenant: Tenant, work: WorkKind, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> AsyncResult:
    """Send now, stamped with the tenant's schema, to the tenant's queue for `work`."""
    queue = policy_for(tenant).queue_for(work)
    with schema_context(tenant.schema_name):
        return task.apply_async(args=args, kwargs=kwargs or {}, queue=queue)


def enqueue_on_commit(
    task: Task, *, tenant: Tenant, work: WorkKind, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> None:
    """Send once the current transaction commits, so the worker finds the rows it is given IDs of."""
    transaction.on_commit(lambda: enqueue(task, tenant=tenant, work=work, args=args, kwargs=kwargs))


def current_tenant() -> Tenant:
    tenant = tenant_connection().tenant
    if not isinstance(tenant, Tenant):
        tenant = Tenant.objects.get(schema_name=tenant_connection().schema_name)
    return tenant
