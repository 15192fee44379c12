"""A task runs in the schema of the tenant that queued it even when tenant-schemas-celery's
`task_prerun` receiver could not enter it (a database out at that instant: Celery only logs a
receiver's error), and is retried when it cannot enter it itself (docs/architecture.md "The tenancy
context")."""

from __future__ import annotations

from django.db import OperationalError
from tenant_schemas_celery.task import TenantTask

from config.celery import app
from tenants.context import TenantEnteringTask, current_schema_name, public_entered


@app.task(bind=True, name="tests.tenants.schema_probe")
def schema_probe(self) -> str:
    return current_schema_name()


def _tenant_lookup_failing(monkeypatch, times: int) -> list[str]:
    calls: list[str] = []
    original = TenantTask.get_tenant_for_schema.__func__

    def lookup(cls, schema_name):
        calls.append(schema_name)
        if len(calls) <= times:
            raise OperationalError("the database is out")
        return original(cls, schema_name)

    monkeypatch.setattr(TenantTask, "get_tenant_for_schema", classmethod(lookup))
    return calls


def test_every_task_is_a_tenant_entering_task():
    assert isinstance(schema_probe, TenantEnteringTask)
    assert all(isinstance(task, TenantEnteringTask) for name, task in app.tasks.items() if name.startswith("apps."))


def test_a_task_whose_schema_switch_failed_before_it_ran_still_runs_in_its_tenant(platform, monkeypatch):
    tenant = platform.tenants["clinic_a"]
    calls = _tenant_lookup_failing(monkeypatch, times=1)
    with public_entered():
        result = schema_probe.apply(headers={"_schema_name": tenant.schema_name})
    assert result.get() == tenant.schema_name
    assert calls == [tenant.schema_name, tenant.schema_name]  # the receiver's failed try, then the task's


def test_a_task_that_cannot_enter_its_tenant_is_retried_instead_of_running_in_public(platform, monkeypatch, caplog):
    tenant = platform.tenants["clinic_a"]
    calls = _tenant_lookup_failing(monkeypatch, times=2)
    with public_entered():
        result = schema_probe.apply(headers={"_schema_name": tenant.schema_name})
    # Run eagerly, the retry runs at once: the receiver's try and the task's fail, the retry's succeeds.
    assert result.get() == tenant.schema_name
    assert len(calls) == 3
    assert "retry: Retry in 1s: OperationalError('the database is out')" in caplog.text
