"""Suspending, activating and deleting a tenant, and linking clinics to hospitals."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_tenants.utils import schema_exists

from apps.audit.models import AuditEvent
from apps.core.errors import Conflict, InvalidInput, NotFound
from tenants.models import ReferralLink, Tenant
from tenants.services import (
    referral_link_create,
    referral_link_deactivate,
    tenant_activate,
    tenant_delete,
    tenant_suspend,
)
from tests.support.tenancy import (
    ADMIN_PASSWORD,
    TenantTraces,
    add_user_with_token,
    discard_tenant,
    http_on,
    provision_throwaway,
    put_object_for,
    session_login,
    traces_of,
)

# One request per family of things a tenant's domain serves; each must be refused while suspended.
SUSPENDED_FAMILIES = [
    ("page: login form", "GET", "/accounts/login/"),
    ("page: login post", "POST", "/accounts/login/"),
    ("api: accounts", "GET", "/api/v1/me/"),
    ("api: tokens", "POST", "/api/v1/tokens/"),
    ("api: audit", "GET", "/api/v1/audit-events/"),
    ("api: uploads", "GET", "/api/v1/uploads/"),
    ("api: schema", "GET", "/api/schema/"),
    ("api: docs", "GET", "/api/docs/"),
    ("dicomweb: search", "GET", "/dicomweb/studies"),
    ("dicomweb: store", "POST", "/dicomweb/studies"),
    ("storage: presigned link", "GET", "/storage/objects/anything"),
]


@pytest.fixture(scope="module")
def suspended(platform):
    """A clinic with an admin token, suspended for the whole module."""
    result = provision_throwaway(platform, kind="clinic", key="suspended")
    add_user_with_token(platform, "suspended", role="clinic_admin")
    with platform.schema():
        tenant_suspend(slug=result.tenant.slug, reason="invoice overdue")
    yield result
    discard_tenant(platform, result.tenant.slug)


@pytest.fixture
def throwaway(platform):
    """A fresh clinic for one test, discarded afterwards whatever the test did to it."""
    result = provision_throwaway(platform, kind="clinic", key="throwaway")
    add_user_with_token(platform, "throwaway", role="clinic_admin")
    yield result
    discard_tenant(platform, result.tenant.slug)


@pytest.mark.parametrize(("family", "method", "path"), SUSPENDED_FAMILIES, ids=[f[0] for f in SUSPENDED_FAMILIES])
def test_every_endpoint_family_of_a_suspended_tenant_answers_403_tenant_suspended(platform, suspended, family, method, path):
    answer = platform.http("suspended", "clinic_admin").request(method, path)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"code": "tenant_suspended", "detail": f"Tenant {suspended.tenant.slug} is suspended."}


def test_a_suspended_tenant_refuses_anonymous_requests_the_same_way(platform, suspended):
    answer = http_on(platform, suspended.domain).get("/api/v1/me/")
    assert answer.status_code == 403
    assert answer.json()["code"] == "tenant_suspended"


def test_suspension_records_its_reason_and_is_audited(platform, suspended):
    with platform.schema():
        tenant = Tenant.objects.get(slug=suspended.tenant.slug)
        event = AuditEvent.objects.filter(action="tenant.suspend", object_id=tenant.slug).get()
    assert (tenant.status, tenant.suspended_reason) == ("suspended", "invoice overdue")
    assert event.detail == {"reason": "invoice overdue"}


def test_other_tenants_keep_working_while_one_is_suspended(platform, suspended):
    assert platform.http("clinic_a", "clinic_admin").get("/api/v1/me/").status_code == 200


def test_activating_a_suspended_tenant_restores_access(platform, throwaway):
    slug = throwaway.tenant.slug
    client = platform.http("throwaway", "clinic_admin")
    with platform.schema():
        tenant_suspend(slug=slug, reason="check")
    assert client.get("/api/v1/me/").status_code == 403
    with platform.schema():
        tenant = tenant_activate(slug=slug)
    assert (tenant.status, tenant.suspended_reason) == ("active", "")
    assert client.get("/api/v1/me/").status_code == 200


def test_deleting_an_active_tenant_is_refused_and_removes_nothing(platform, throwaway):
    slug = throwaway.tenant.slug
    put_object_for(platform, "throwaway", "studies/kept.dcm", b"kept")
    with platform.schema(), pytest.raises(Conflict) as refused:
        tenant_delete(slug=slug)
    assert (refused.value.code, refused.value.status) == ("tenant_not_suspended", 409)
    assert traces_of(platform, slug=slug, deployment="public_cloud") == TenantTraces(
        tenant_rows=1, schema_exists=True, domains=[throwaway.domain],
        object_keys=[f"tenants/{slug}/studies/kept.dcm"], bucket_exists=True,
    )


@pytest.mark.parametrize("kind", ["clinic", "hospital"])
def test_deleting_a_suspended_tenant_removes_schema_rows_domain_and_objects(platform, kind):
    result = provision_throwaway(platform, kind=kind, key="doomed")
    slug, deployment = result.tenant.slug, result.tenant.deployment
    put_object_for(platform, "doomed", "studies/1.2.3/instance.dcm", b"DICM")
    with platform.schema():
        tenant_suspend(slug=slug)
        tenant_delete(slug=slug)
    platform.tenants.pop("doomed")
    traces = traces_of(platform, slug=slug, deployment=deployment)
    assert traces.tenant_rows == 0
    assert traces.schema_exists is False
    assert traces.domains == []
    assert traces.object_keys == []
    # A dedicated tenant's own bucket goes with it; the shared bucket stays for the others.
    assert traces.bucket_exists is (deployment == "public_cloud")
    assert http_on(platform, result.domain).get("/healthz").json()["code"] == "unknown_tenant"


def test_deleting_a_tenant_leaves_other_tenants_objects_in_the_shared_bucket(platform, throwaway):
    from apps.storage.tenant_storage import storage_for

    neighbour = storage_for(platform.tenants["clinic_c"])
    neighbour.put_bytes("probe/neighbour.txt", b"still here")
    discard_tenant(platform, throwaway.tenant.slug)
    assert neighbour.get_bytes("probe/neighbour.txt") == b"still here"


def test_deleting_an_unknown_tenant_answers_tenant_not_found(platform):
    with platform.schema(), pytest.raises(NotFound) as refused:
        tenant_delete(slug="no-such-tenant")
    assert (refused.value.code, refused.value.status) == ("tenant_not_found", 404)


def test_a_deleted_tenants_users_can_no_longer_sign_in(platform):
    result = provision_throwaway(platform, kind="clinic")
    discard_tenant(platform, result.tenant.slug)
    answer = http_on(platform, result.domain).get("/accounts/login/")
    assert answer.status_code == 404
    assert answer.json()["code"] == "unknown_tenant"


def test_a_reactivated_tenants_admin_can_sign_in_again(platform, throwaway):
    slug = throwaway.tenant.slug
    with platform.schema():
        tenant_suspend(slug=slug)
        tenant_activate(slug=slug)
    _, answer = session_login(platform, throwaway.domain, username="admin", password=ADMIN_PASSWORD)
    assert answer.status_code == 302


# --- referral network ---------------------------------------------------------------------------------


@pytest.fixture
def clinic_and_hospital(platform):
    clinic = provision_throwaway(platform, kind="clinic")
    hospital = provision_throwaway(platform, kind="hospital")
    yield clinic.tenant.slug, hospital.tenant.slug
    discard_tenant(platform, clinic.tenant.slug)
    discard_tenant(platform, hospital.tenant.slug)


def test_an_operator_links_a_clinic_to_a_hospital(platform, clinic_and_hospital):
    clinic, hospital = clinic_and_hospital
    with platform.schema():
        link = referral_link_create(clinic_slug=clinic, hospital_slug=hospital, sla_minutes={"stat": 60})
        stored = ReferralLink.objects.select_related("clinic", "hospital").get(pk=link.pk)
    assert (stored.clinic.slug, stored.hospital.slug, stored.active, stored.sla_minutes) == (
        clinic, hospital, True, {"stat": 60}
    )


def test_linking_the_same_pair_twice_keeps_one_link_and_reactivates_it(platform, clinic_and_hospital):
    clinic, hospital = clinic_and_hospital
    with platform.schema():
        first = referral_link_create(clinic_slug=clinic, hospital_slug=hospital)
        referral_link_deactivate(link_id=first.pk)
        second = referral_link_create(clinic_slug=clinic, hospital_slug=hospital)
        links = list(ReferralLink.objects.filter(clinic__slug=clinic).values_list("pk", "active"))
    assert second.pk == first.pk
    assert links == [(first.pk, True)]


@pytest.mark.parametrize(
    ("clinic_key", "hospital_key"),
    [("clinic_a", "clinic_c"), ("hospital_b", "clinic_a"), ("hospital_b", "hospital_b")],
)
def test_a_referral_link_only_goes_from_a_clinic_to_a_hospital(platform, clinic_key, hospital_key):
    with platform.schema(), pytest.raises(InvalidInput) as refused:
        referral_link_create(
            clinic_slug=platform.tenants[clinic_key].slug, hospital_slug=platform.tenants[hospital_key].slug
        )
    assert refused.value.code == "invalid_referral"


def test_deleting_a_tenant_removes_its_referral_links(platform, clinic_and_hospital):
    clinic, hospital = clinic_and_hospital
    with platform.schema():
        referral_link_create(clinic_slug=clinic, hospital_slug=hospital)
    discard_tenant(platform, hospital)
    with platform.schema():
        assert not ReferralLink.objects.filter(clinic__slug=clinic).exists()


def test_the_template_schema_survives_tenant_deletion(platform, throwaway):
    discard_tenant(platform, throwaway.tenant.slug)
    with platform.schema():
        assert schema_exists(settings.TENANT_BASE_SCHEMA)
