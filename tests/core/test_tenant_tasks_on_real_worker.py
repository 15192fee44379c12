"""Tasks run in the schema of the tenant that queued them, on the queue its deployment names."""

import uuid

from apps.audit.models import AuditEvent
from apps.operations.tasks import where_am_i
from tenants.deployment import WorkKind
from tenants.queues import enqueue
from tests.support.platform import wait_until


def _probe_report(platform, tenant_key: str, probe_id: str):
    def find():
        with platform.schema(tenant_key):
            event = AuditEvent.objects.filter(action="worker.probe", object_id=probe_id).first()
            return event.detail if event else None

    return wait_until(find, timeout=60, message=f"probe {probe_id} in {tenant_key}")


def test_public_cloud_task_runs_in_its_schema_on_the_shared_queue(platform, workers):
    probe_id = uuid.uuid4().hex
    with platform.schema():
        enqueue(where_am_i.name, tenant=platform.tenants["clinic_a"], work=WorkKind.INGEST, args=(probe_id,))
    report = _probe_report(platform, "clinic_a", probe_id)
    assert report["current_schema"] == "test_clinic_a"
    assert report["tenant_slug"] == "test-clinic-a"
    assert report["queue"] == "ingest"
    assert report["worker"].startswith("shared@")


def test_dedicated_cloud_task_runs_in_its_schema_on_its_own_queue_and_worker(platform, workers):
    probe_id = uuid.uuid4().hex
    with platform.schema():
        enqueue(where_am_i.name, tenant=platform.tenants["hospital_b"], work=WorkKind.AI, args=(probe_id,))
    report = _probe_report(platform, "hospital_b", probe_id)
    assert report["current_schema"] == "test_hospital_b"
    assert report["queue"] == "test-hospital-b.ai"
    assert report["worker"].startswith("hospital-b@")


def test_a_task_leaves_no_trace_in_another_tenants_schema(platform, workers):
    probe_id = uuid.uuid4().hex
    with platform.schema():
        enqueue(where_am_i.name, tenant=platform.tenants["clinic_a"], work=WorkKind.WORKFLOW, args=(probe_id,))
    _probe_report(platform, "clinic_a", probe_id)
    for other in ("clinic_c", "hospital_b"):
        with platform.schema(other):
            assert not AuditEvent.objects.filter(object_id=probe_id).exists()
