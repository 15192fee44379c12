"""Registering DIMSE peers: the REST API for tenant admins and the management commands (docs/dimse.md)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.dimse.models import DimsePeer
from tenants.models import default_ae_title_for_slug


def _ae_title() -> str:
    return f"MR{uuid.uuid4().hex[:10].upper()}"


def test_a_tenants_called_ae_title_is_its_slug_upper_cased_and_cut_to_16_characters(platform: Any) -> None:
    assert platform.tenants["clinic_a"].dimse_ae_title == "TEST-CLINIC-A"
    assert default_ae_title_for_slug("a-very-long-hospital-name") == "A-VERY-LONG-HOSP"


def test_a_tenant_admin_registers_lists_and_removes_a_peer(platform: Any) -> None:
    http = platform.http("clinic_a", "clinic_admin")
    ae_title = _ae_title()

    created = http.post("/api/v1/dimse/peers/", json={"ae_title": ae_title, "host": "10.1.2.3", "port": 104})
    assert created.status_code == 201, created.text
    listed = http.get("/api/v1/dimse/peers/").json()
    assert listed["called_ae_title"] == "TEST-CLINIC-A"
    assert {"ae_title": ae_title, "host": "10.1.2.3", "port": 104} in [
        {key: peer[key] for key in ("ae_title", "host", "port")} for peer in listed["results"]]

    assert http.delete(f"/api/v1/dimse/peers/{created.json()['id']}/").status_code == 204
    with platform.schema():
        assert not DimsePeer.objects.filter(ae_title=ae_title).exists()
    with platform.schema("clinic_a"):
        assert list(AuditEvent.objects.filter(detail__ae_title=ae_title).order_by("id")
                    .values_list("action", flat=True)) == ["dimse.peer_add", "dimse.peer_remove"]


def test_registering_the_same_peer_twice_is_a_conflict(platform: Any) -> None:
    http = platform.http("clinic_a", "clinic_admin")
    body = {"ae_title": _ae_title(), "host": "10.1.2.4"}

    assert http.post("/api/v1/dimse/peers/", json=body).status_code == 201
    again = http.post("/api/v1/dimse/peers/", json=body)

    assert (again.status_code, again.json()["code"]) == (409, "duplicate_dimse_peer")


@pytest.mark.parametrize(("body", "code"), [
    ({"ae_title": "BACK\\SLASH", "host": "10.0.0.1"}, "invalid_ae_title"),
    ({"ae_title": "SEVENTEEN-CHARS-X", "host": "10.0.0.1"}, "invalid_ae_title"),
    ({"ae_title": "CT1", "host": "ct1.example"}, "invalid_host"),
])
def test_an_invalid_peer_is_refused(platform: Any, body: dict[str, str], code: str) -> None:
    answer = platform.http("clinic_a", "clinic_admin").post("/api/v1/dimse/peers/", json=body)

    assert (answer.status_code, answer.json()["code"]) == (400, code)


def test_only_tenant_admins_manage_peers(platform: Any) -> None:
    assert platform.http("clinic_a", "technologist").get("/api/v1/dimse/peers/").status_code == 403


def test_a_tenant_sees_and_removes_only_its_own_peers(platform: Any) -> None:
    created = platform.http("clinic_a", "clinic_admin").post(
        "/api/v1/dimse/peers/", json={"ae_title": _ae_title(), "host": "10.1.2.5"}).json()

    other = platform.http("clinic_c", "clinic_admin")
    assert created["id"] not in [peer["id"] for peer in other.get("/api/v1/dimse/peers/").json()["results"]]
    assert other.delete(f"/api/v1/dimse/peers/{created['id']}/").status_code == 404


def test_the_commands_add_and_remove_a_peer(platform: Any) -> None:
    slug, ae_title = platform.tenants["clinic_a"].slug, _ae_title()

    with platform.schema():
        call_command("dimse_peer_add", tenant=slug, ae=ae_title, host="10.9.9.9", port=4242)
        assert DimsePeer.objects.filter(ae_title=ae_title, host="10.9.9.9", port=4242).count() == 1
        call_command("dimse_peer_remove", tenant=slug, ae=ae_title, host="10.9.9.9")
        assert not DimsePeer.objects.filter(ae_title=ae_title).exists()
        with pytest.raises(CommandError, match="dimse_peer_not_found"):
            call_command("dimse_peer_remove", tenant=slug, ae=ae_title, host="10.9.9.9")
