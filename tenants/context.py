"""The tenancy context: which tenant the code runs for, and the one way to switch it.

django-tenants keeps the current tenant on the database connection and sets PostgreSQL's
`search_path` from it (docs/architecture.md "The tenancy context"). This module is the only one
that touches that state: the request edge (django-tenants' middleware) and the Celery worker
(tenant-schemas-celery) set it before our code runs; everything else reads it with
`current_tenant()` and switches with `tenant_entered(tenant)` or `public_entered()`, which give the
previous tenant back on exit, also when the block raises. tests/core/test_conventions.py fails when
another module switches by any other means.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context
from tenant_schemas_celery.app import get_schema_name_from_task, switch_schema
from tenant_schemas_celery.task import TenantTask

from apps.core.retries import (
    DATABASE_ERRORS,
    OUTLAST_A_RESTART_BACKOFF_MAX_SECONDS,
    OUTLAST_A_RESTART_RETRIES,
)
from tenants.models import Tenant


class NoTenantEntered(LookupError):
    """The code asked for the current tenant while the connection is in the public (or template) schema."""


def _connection() -> Any:
    # django-tenants ships no type information; django-stubs sees a plain BaseDatabaseWrapper.
    return connection


def current_schema_name() -> str:
    """The schema the connection's queries run in now (`public` outside any tenant)."""
    return str(_connection().schema_name)


def current_tenant_or_none() -> Tenant | None:
    """The tenant whose schema is entered, or None in the public or template schema."""
    tenant = _connection().tenant
    if isinstance(tenant, Tenant):
        return tenant
    schema = current_schema_name()
    if schema == get_public_schema_name():
        return None
    # Entered by schema name only (a Celery task, migrate_schemas): the row says which tenant it is.
    return Tenant.objects.filter(schema_name=schema).first()


def current_tenant() -> Tenant:
    """The tenant whose schema is entered; raises NoTenantEntered outside any tenant."""
    tenant = current_tenant_or_none()
    if tenant is None:
        raise NoTenantEntered(f"No tenant is entered (the connection is in schema {current_schema_name()!r}).")
    return tenant


@contextmanager
def tenant_entered(tenant: Tenant) -> Iterator[Tenant]:
    """Run the block in `tenant`'s schema, with `current_tenant()` answering `tenant`; the previous
    tenant (or public) is entered again on exit. Usable as a decorator too."""
    with tenant_context(tenant):
        yield tenant


@contextmanager
def public_entered() -> Iterator[None]:
    """Run the block in the public schema (tenants, domains, plans, referral links, the outbox); the
    previous tenant is entered again on exit. Usable as a decorator too."""
    with schema_context(get_public_schema_name()):
        yield


def task_schema_name(task: Any) -> str | None:
    """The schema a running task was queued in (stamped into its message by tenant-schemas-celery)."""
    name = get_schema_name_from_task(task, {})
    return str(name) if name else None


class TenantEnteringTask(TenantTask):  # type: ignore[misc]  # tenant-schemas-celery ships no types
    """The base of every Celery task: it runs in the schema of the tenant that queued it.

    tenant-schemas-celery enters that schema in a `task_prerun` receiver, and Celery only logs a
    receiver's error: a database that is out at that instant would leave the task running in the
    public schema. So the task checks before it runs, enters the schema itself when it is not
    entered yet, and is retried (like any task meeting a database outage) when it cannot."""

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        wanted = task_schema_name(self) or get_public_schema_name()
        if current_schema_name() != wanted:
            try:
                switch_schema(self, kwargs)
            except DATABASE_ERRORS as error:
                retries = self.request.retries
                raise self.retry(exc=error, countdown=min(2 ** retries, OUTLAST_A_RESTART_BACKOFF_MAX_SECONDS),
                                 max_retries=max(self.max_retries or 0, OUTLAST_A_RESTART_RETRIES)) from error
        return super().__call__(*args, **kwargs)
