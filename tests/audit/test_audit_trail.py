"""The audit trail: one helper appends events; the database refuses to change or remove them; tenant
admins read their own tenant's trail over the API, filtered, and nothing of another tenant's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import Actor, audit_record
from tests.support.platform import unique_suffix


def _record(platform, tenant_key: str = "clinic_a", **kwargs) -> AuditEvent:
    kwargs.setdefault("action", "worker.probe")
    kwargs.setdefault("object_type", "probe")
    kwargs.setdefault("object_id", unique_suffix())
    with platform.schema(tenant_key):
        return AuditEvent.objects.get(pk=audit_record(**kwargs))


def test_the_helper_writes_actor_tenant_action_object_address_time_and_outcome(platform):
    before = timezone.now()
    actor = Actor(kind="user", identifier="42", name="alice", client_ip="10.1.2.3")
    event = _record(platform, actor=actor, action="dicomweb.retrieve", object_type="study", object_id="1.2.3",
                    outcome="denied", detail={"reason": "role"})
    with platform.schema("clinic_a"):
        stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.tenant_slug, stored.actor_type, stored.actor_id, stored.actor_name) == ("test-clinic-a", "user", "42", "alice")
    assert (stored.action, stored.object_type, stored.object_id) == ("dicomweb.retrieve", "study", "1.2.3")
    assert (stored.client_ip, stored.outcome, stored.detail) == ("10.1.2.3", "denied", {"reason": "role"})
    assert before <= stored.occurred_at <= timezone.now()


def test_without_an_actor_the_system_is_recorded(platform):
    event = _record(platform)
    assert (event.actor_type, event.actor_name, event.client_ip, event.outcome) == ("system", "system", None, "success")


def test_an_events_row_lives_in_its_tenants_schema_only(platform):
    event = _record(platform, "clinic_c")
    with platform.schema("clinic_c"):
        assert AuditEvent.objects.filter(pk=event.pk, object_id=event.object_id).exists()
    for other in ("clinic_a", "hospital_b"):
        with platform.schema(other):
            assert not AuditEvent.objects.filter(object_id=event.object_id).exists()


def test_a_request_records_the_user_and_their_address(platform):
    answer = platform.http("clinic_a", "technologist").post("/api/v1/tokens/", json={"name": f"audited-{unique_suffix()}"})
    token_id = answer.json()["detail"]["id"]
    with platform.schema("clinic_a"):
        event = AuditEvent.objects.get(action="token.issue", object_id=str(token_id))
    assert (event.actor_type, event.actor_name, event.client_ip, event.outcome) == (
        "user", "technologist-user", "127.0.0.1", "success"
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda pk: AuditEvent.objects.filter(pk=pk).update(action="tampered"),
        lambda pk: AuditEvent.objects.filter(pk=pk).delete(),
        lambda pk: connection.cursor().execute("UPDATE audit_auditevent SET outcome = 'success' WHERE id = %s", [pk]),
        lambda pk: connection.cursor().execute("DELETE FROM audit_auditevent WHERE id = %s", [pk]),
    ],
    ids=["orm-update", "orm-delete", "sql-update", "sql-delete"],
)
@pytest.mark.parametrize("tenant_key", ["clinic_a", "hospital_b"])
def test_the_database_refuses_to_change_or_delete_an_event(platform, tenant_key, change):
    event = _record(platform, tenant_key, outcome="failure")
    with platform.schema(tenant_key):
        with pytest.raises(DatabaseError) as refused, transaction.atomic():
            change(event.pk)
        stored = AuditEvent.objects.get(pk=event.pk)
    assert "audit events are append-only" in str(refused.value)
    assert (stored.action, stored.outcome) == ("worker.probe", "failure")


def test_a_newly_provisioned_tenants_trail_is_append_only_too(platform):
    from tests.support.tenancy import discard_tenant, provision_throwaway

    result = provision_throwaway(platform, kind="clinic", key="fresh-audit")
    try:
        with platform.schema("fresh-audit"):
            event = AuditEvent.objects.filter(action="tenant.provision").get()
            with pytest.raises(DatabaseError), transaction.atomic():
                AuditEvent.objects.filter(pk=event.pk).delete()
            assert AuditEvent.objects.filter(pk=event.pk).exists()
    finally:
        discard_tenant(platform, result.tenant.slug)


# --- the read API ---------------------------------------------------------------------------------------


@pytest.fixture
def marker(platform):
    """Three events in clinic_a under one unique object id, by two actors."""
    object_id = f"marker-{unique_suffix()}"
    alice = Actor(kind="user", identifier="1", name="alice", client_ip="10.0.0.1")
    bob = Actor(kind="user", identifier="2", name="bob", client_ip="10.0.0.2")
    _record(platform, action="dicomweb.retrieve", object_id=object_id, actor=alice)
    _record(platform, action="dicomweb.retrieve", object_id=object_id, actor=bob)
    _record(platform, action="dicomweb.search", object_id=object_id, actor=alice, outcome="denied")
    return object_id


def _events(client, **params):
    answer = client.get("/api/v1/audit-events/", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def test_an_admin_reads_the_events_newest_first(platform, marker):
    events = _events(platform.http("clinic_a", "clinic_admin"), object_id=marker)
    assert [(e["action"], e["actor_name"], e["outcome"]) for e in events] == [
        ("dicomweb.search", "alice", "denied"), ("dicomweb.retrieve", "bob", "success"), ("dicomweb.retrieve", "alice", "success"),
    ]
    assert set(events[0]) == {
        "id", "occurred_at", "tenant_slug", "actor_type", "actor_id", "actor_name", "action", "object_type",
        "object_id", "client_ip", "outcome", "detail",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "dicomweb.retrieve"}, [("dicomweb.retrieve", "bob"), ("dicomweb.retrieve", "alice")]),
        ({"action": "dicomweb."}, [("dicomweb.search", "alice"), ("dicomweb.retrieve", "bob"), ("dicomweb.retrieve", "alice")]),
        ({"actor": "bob"}, [("dicomweb.retrieve", "bob")]),
        ({"object_type": "nothing-like-it"}, []),
    ],
    ids=["exact-action", "action-prefix", "actor", "object-type"],
)
def test_an_admin_filters_the_events(platform, marker, params, expected):
    events = _events(platform.http("clinic_a", "clinic_admin"), object_id=marker, **params)
    assert [(e["action"], e["actor_name"]) for e in events] == expected


def test_an_admin_filters_the_events_by_time(platform, marker):
    client = platform.http("clinic_a", "clinic_admin")
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    earlier = (timezone.now() - timedelta(minutes=5)).isoformat()
    assert len(_events(client, object_id=marker, since=earlier)) == 3
    assert _events(client, object_id=marker, since=later) == []
    assert _events(client, object_id=marker, until=earlier) == []


@pytest.mark.parametrize("role", ["technologist", "referring_physician"])
def test_a_non_admin_may_not_read_the_trail(platform, role):
    answer = platform.http("clinic_a", role).get("/api/v1/audit-events/")
    assert answer.status_code == 403
    assert answer.json()["code"] == "permission_denied"


def test_an_admin_sees_only_their_own_tenants_events(platform, marker):
    other_object = f"other-{unique_suffix()}"
    _record(platform, "clinic_c", object_id=other_object)
    client = platform.http("clinic_a", "clinic_admin")
    assert _events(client, object_id=other_object) == []
    everything = _events(client, limit=1000)
    assert {event["tenant_slug"] for event in everything} == {"test-clinic-a"}


def test_a_hospital_admin_reads_the_hospitals_trail_and_not_the_clinics(platform, marker):
    client = platform.http("hospital_b", "hospital_admin")
    assert _events(client, object_id=marker) == []
    assert {event["tenant_slug"] for event in _events(client, limit=200)} == {"test-hospital-b"}


def test_the_operator_reads_the_platforms_trail_on_the_public_domain(platform):
    events = _events(platform.operator_http(), action="tenant.provision", limit=1000)
    assert events
    assert {event["tenant_slug"] for event in events} == {"public"}
