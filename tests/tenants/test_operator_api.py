"""The operator API on the platform domain (`localhost`): tenants and referral links over HTTP."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from tests.support.tenancy import discard_tenant, http_on, new_slug, session_login, traces_of


@pytest.fixture
def operator(platform):
    return platform.operator_http()


@pytest.fixture
def created_slugs(platform):
    """Slugs a test provisions over HTTP; discarded afterwards."""
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        discard_tenant(platform, slug)


def _provision(operator, created_slugs, **body):
    slug = body.setdefault("slug", new_slug())
    body.setdefault("name", f"Clinic {slug}")
    body.setdefault("kind", "clinic")
    answer = operator.post("/api/v1/tenants/", json=body)
    if answer.status_code == 201:
        created_slugs.append(slug)
    return answer


def test_an_operator_provisions_a_clinic_and_gets_its_admin_credentials(platform, operator, created_slugs):
    slug = new_slug()
    answer = _provision(operator, created_slugs, slug=slug, name="North Clinic")
    assert answer.status_code == 201
    body = answer.json()
    assert body["domain"] == f"{slug}.localhost"
    assert body["admin_username"] == "admin"
    assert {key: body["tenant"][key] for key in ("slug", "name", "kind", "deployment", "status", "plan", "domains")} == {
        "slug": slug, "name": "North Clinic", "kind": "clinic", "deployment": "public_cloud", "status": "active",
        "plan": None, "domains": [f"{slug}.localhost"],
    }
    assert body["tenant"]["queues"] == ["ingest", "ai", "film", "workflow"]
    _, login = session_login(platform, body["domain"], username="admin", password=body["admin_password"])
    assert login.status_code == 302


def test_an_operator_provisions_a_hospital_on_its_own_domain_with_a_plan(operator, created_slugs):
    slug = new_slug()
    domain = f"{slug}.hospital.localhost"
    answer = _provision(operator, created_slugs, slug=slug, kind="hospital", domain=domain, plan="standard")
    assert answer.status_code == 201
    tenant = answer.json()["tenant"]
    assert (tenant["deployment"], tenant["plan"], tenant["domains"]) == ("dedicated_cloud", "standard", [domain])
    assert tenant["queues"][0] == f"{slug}.ingest"


def test_the_operator_lists_tenants_without_the_public_schema(operator):
    answer = operator.get("/api/v1/tenants/", params={"limit": 1000})
    assert answer.status_code == 200
    slugs = [tenant["slug"] for tenant in answer.json()["results"]]
    assert {"test-clinic-a", "test-hospital-b", "test-clinic-c"} <= set(slugs)
    assert "public" not in slugs
    assert answer.json()["count"] == len(slugs)


def test_the_operator_reads_one_tenant(operator):
    answer = operator.get("/api/v1/tenants/test-hospital-b/")
    assert answer.status_code == 200
    assert (answer.json()["kind"], answer.json()["deployment"], answer.json()["domains"]) == (
        "hospital", "dedicated_cloud", ["test-hospital-b.localhost"]
    )


def test_reading_an_unknown_tenant_answers_404_not_found(operator):
    answer = operator.get("/api/v1/tenants/no-such-tenant/")
    assert answer.status_code == 404
    assert answer.json() == {"code": "not_found", "detail": "Not found."}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"slug": "Bad_Slug"}, 400, "invalid_slug"),
        ({"slug": "www"}, 400, "invalid_slug"),
        ({"slug": "test-clinic-a"}, 409, "duplicate_slug"),
        ({"domain": "test-hospital-b.localhost"}, 409, "duplicate_domain"),
        ({"domain": "has_underscore.localhost"}, 400, "invalid_domain"),
        ({"plan": "platinum"}, 400, "invalid_plan"),
    ],
)
def test_refused_provisioning_answers_a_json_error_and_creates_nothing(platform, operator, created_slugs, body, status, code):
    before = operator.get("/api/v1/tenants/", params={"limit": 1000}).json()["count"]
    answer = _provision(operator, created_slugs, **body)
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]
    assert operator.get("/api/v1/tenants/", params={"limit": 1000}).json()["count"] == before


def test_provisioning_with_missing_fields_answers_400_with_field_errors(operator):
    answer = operator.post("/api/v1/tenants/", json={"slug": new_slug()})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert set(answer.json()["detail"]) == {"name", "kind"}


def test_an_operator_suspends_activates_and_deletes_a_tenant(platform, operator, created_slugs):
    slug = new_slug()
    domain = _provision(operator, created_slugs, slug=slug).json()["domain"]

    suspended = operator.post(f"/api/v1/tenants/{slug}/suspend/", json={"reason": "contract ended"})
    assert (suspended.status_code, suspended.json()["status"], suspended.json()["suspended_reason"]) == (
        200, "suspended", "contract ended"
    )
    assert http_on(platform, domain).get("/api/v1/me/").json()["code"] == "tenant_suspended"

    activated = operator.post(f"/api/v1/tenants/{slug}/activate/")
    assert (activated.status_code, activated.json()["status"]) == (200, "active")
    assert http_on(platform, domain).get("/api/v1/me/").json()["code"] == "not_authenticated"

    refused = operator.delete(f"/api/v1/tenants/{slug}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "tenant_not_suspended"

    operator.post(f"/api/v1/tenants/{slug}/suspend/", json={})
    deleted = operator.delete(f"/api/v1/tenants/{slug}/")
    assert deleted.status_code == 204
    assert operator.get(f"/api/v1/tenants/{slug}/").status_code == 404
    assert traces_of(platform, slug=slug, deployment="public_cloud").tenant_rows == 0


def test_operator_actions_are_audited_with_the_operator_and_address(platform, operator, created_slugs):
    slug = new_slug()
    _provision(operator, created_slugs, slug=slug)
    operator.post(f"/api/v1/tenants/{slug}/suspend/", json={"reason": "audit"})
    with platform.schema():
        events = list(
            AuditEvent.objects.filter(object_type="tenant", object_id=slug)
            .order_by("id").values_list("action", "actor_name", "client_ip", "outcome")
        )
    assert events == [
        ("tenant.provision", "operator-user", "127.0.0.1", "success"),
        ("tenant.suspend", "operator-user", "127.0.0.1", "success"),
    ]


def test_an_operator_links_a_clinic_to_a_hospital_and_lists_and_deactivates_the_link(operator, created_slugs):
    clinic = _provision(operator, created_slugs, kind="clinic").json()["tenant"]["slug"]
    hospital = _provision(operator, created_slugs, kind="hospital").json()["tenant"]["slug"]

    created = operator.post("/api/v1/referral-links/", json={"clinic": clinic, "hospital": hospital, "sla_minutes": {"routine": 1440}})
    assert created.status_code == 201
    link = created.json()
    assert (link["clinic"], link["hospital"], link["active"], link["sla_minutes"]) == (clinic, hospital, True, {"routine": 1440})

    listed = operator.get("/api/v1/referral-links/", params={"clinic": clinic})
    assert [item["id"] for item in listed.json()["results"]] == [link["id"]]

    deactivated = operator.post(f"/api/v1/referral-links/{link['id']}/deactivate/")
    assert (deactivated.status_code, deactivated.json()["active"]) == (200, False)


def test_a_referral_link_between_two_clinics_is_refused(operator):
    answer = operator.post("/api/v1/referral-links/", json={"clinic": "test-clinic-a", "hospital": "test-clinic-c"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_referral"


def test_a_referral_link_to_an_unknown_tenant_answers_404(operator):
    answer = operator.post("/api/v1/referral-links/", json={"clinic": "test-clinic-a", "hospital": "no-such-hospital"})
    assert answer.status_code == 404
    assert answer.json()["code"] == "tenant_not_found"


def test_the_operator_api_needs_a_token(platform):
    answer = platform.operator_http(token="").get("/api/v1/tenants/")
    assert answer.status_code == 401
    assert answer.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("slug", ["pg-clinic", "pg-catalog", "pg-toast", "information-schema", "public", "tenant-template"])
def test_a_slug_that_would_name_a_reserved_schema_is_refused_and_creates_nothing(platform, operator, created_slugs, slug):
    before = operator.get("/api/v1/tenants/", params={"limit": 1000}).json()["count"]

    answer = _provision(operator, created_slugs, slug=slug)

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_slug"
    assert slug in answer.json()["detail"]
    assert operator.get("/api/v1/tenants/", params={"limit": 1000}).json()["count"] == before
