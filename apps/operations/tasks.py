"""Platform-level periodic tasks and a probe task that reports where it ran (used by health checks and tests)."""

from typing import Any

from celery import shared_task
from django.db import connection

from apps.audit.actions import AuditAction
from tenants.context import current_schema_name, current_tenant_or_none


@shared_task(name="apps.operations.tasks.beat_heartbeat", acks_late=True)
def beat_heartbeat() -> str:
    """Proves the scheduler delivers: beat sends it every few minutes; workers log it."""
    return "ok"


@shared_task(name="apps.operations.tasks.where_am_i", bind=True, acks_late=True)
def where_am_i(self: Any, probe_id: str) -> dict[str, Any]:
    """Record, in the audit trail of the schema it ran in, which schema and queue ran this task."""
    from apps.audit.services import Actor, audit_record

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (current_schema,) = cursor.fetchone()
    delivery = self.request.delivery_info or {}
    report = {
        "schema": current_schema_name(),
        "current_schema": current_schema,
        "queue": delivery.get("routing_key"),
        "tenant_slug": getattr(current_tenant_or_none(), "slug", "public"),
        "worker": self.request.hostname,
    }
    audit_record(
        action=AuditAction.WORKER_PROBE, actor=Actor.system("worker"), object_type="probe", object_id=probe_id, detail=report
    )
    return report
