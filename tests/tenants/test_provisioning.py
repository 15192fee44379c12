"""Provisioning a tenant: schema cloned from the template, domain, storage, first admin; defaults by
kind; refused input changes nothing; a failure mid-way leaves nothing behind."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_exists

from apps.core.errors import Conflict, InvalidInput
from apps.storage.backends import StorageUnavailable
from tenants.deployment import Quotas, policy_for
from tenants.models import Domain, Tenant
from tenants.services import tenant_provision
from tests.support.platform import unique_suffix
from tests.support.tenancy import (
    ADMIN_PASSWORD,
    TenantTraces,
    discard_tenant,
    http_on,
    new_slug,
    provision_throwaway,
    s3_client,
    session_login,
    traces_of,
)

NOTHING_LEFT = TenantTraces(tenant_rows=0, schema_exists=False, domains=[], object_keys=[], bucket_exists=False)


@pytest.fixture(scope="module")
def clinic(platform):
    result = provision_throwaway(platform, kind="clinic")
    yield result
    discard_tenant(platform, result.tenant.slug)


@pytest.fixture(scope="module")
def hospital(platform):
    result = provision_throwaway(platform, kind="hospital")
    yield result
    discard_tenant(platform, result.tenant.slug)


def _tables_in(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def _applied_migrations(schema: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')
        return set(cursor.fetchall())


# --- success ---------------------------------------------------------------------------------------


def test_provisioning_creates_a_schema_with_the_templates_tables_and_migrations(platform, clinic):
    schema = clinic.tenant.schema_name
    with platform.schema():
        assert schema == clinic.tenant.slug.replace("-", "_")
        assert schema_exists(schema)
        assert _tables_in(schema) == _tables_in(settings.TENANT_BASE_SCHEMA)
        assert {"accounts_user", "accounts_apitoken", "audit_auditevent"} <= _tables_in(schema)
        assert _applied_migrations(schema) == _applied_migrations(settings.TENANT_BASE_SCHEMA)


def test_provisioning_creates_the_primary_domain_slug_dot_base_domain(platform, clinic):
    with platform.schema():
        domains = list(Domain.objects.filter(tenant__slug=clinic.tenant.slug).values_list("domain", "is_primary"))
    assert clinic.domain == f"{clinic.tenant.slug}.localhost"
    assert domains == [(clinic.domain, True)]


def test_the_new_tenant_is_served_on_its_domain(platform, clinic):
    page = http_on(platform, clinic.domain).get("/accounts/login/")
    assert page.status_code == 200
    assert f"Throwaway {clinic.tenant.slug}" in page.text


def test_the_first_admin_can_sign_in_with_a_session_and_is_the_clinic_admin(platform, clinic):
    client, answer = session_login(platform, clinic.domain, username="admin", password=ADMIN_PASSWORD)
    assert answer.status_code == 302
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["role"] == "clinic_admin"
    assert me.json()["tenant"] == {"slug": clinic.tenant.slug, "kind": "clinic"}


def test_a_hospitals_first_admin_is_the_hospital_admin(platform, hospital):
    client, answer = session_login(platform, hospital.domain, username="admin", password=ADMIN_PASSWORD)
    assert answer.status_code == 302
    assert client.get("/api/v1/me/").json()["role"] == "hospital_admin"


def test_provisioning_returns_a_generated_admin_password_when_none_is_given(platform):
    slug = new_slug()
    with platform.schema():
        result = tenant_provision(slug=slug, name="Generated password", kind="clinic")
    try:
        assert len(result.admin_password) >= 16
        _, answer = session_login(platform, result.domain, username="admin", password=result.admin_password)
        assert answer.status_code == 302
    finally:
        discard_tenant(platform, slug)


def test_a_public_cloud_tenant_stores_under_its_prefix_in_the_shared_bucket(platform, clinic):
    from apps.storage.tenant_storage import storage_for

    storage_for(clinic.tenant).put_bytes("probe/provisioned.txt", b"hello")
    listing = s3_client(platform).list_objects_v2(Bucket=settings.S3_BUCKET, Prefix=f"tenants/{clinic.tenant.slug}/")
    assert [item["Key"] for item in listing["Contents"]] == [f"tenants/{clinic.tenant.slug}/probe/provisioned.txt"]


def test_a_dedicated_cloud_tenant_gets_its_own_empty_bucket_at_provisioning(platform, hospital):
    bucket = f"imaging-cloud-{hospital.tenant.slug}"
    client = s3_client(platform)
    assert client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert policy_for(hospital.tenant).storage_location().bucket == bucket


def test_provisioning_is_audited_in_the_public_schema_and_in_the_tenants_own_trail(platform, clinic):
    from apps.audit.models import AuditEvent

    with platform.schema():
        public = AuditEvent.objects.get(action="tenant.provision", object_id=clinic.tenant.slug)
    assert public.tenant_slug == "public"
    assert public.detail == {"kind": "clinic", "deployment": "public_cloud", "domain": clinic.domain}
    with platform.schema(clinic.tenant.slug):
        own = list(AuditEvent.objects.filter(action__in=["tenant.provision", "user.create"]).values_list("action", flat=True))
    assert sorted(own) == ["tenant.provision", "user.create"]


# --- defaults by kind --------------------------------------------------------------------------------


def test_a_clinic_defaults_to_the_public_cloud_with_shared_queues(clinic):
    assert clinic.tenant.kind == "clinic"
    assert clinic.tenant.deployment == "public_cloud"
    assert policy_for(clinic.tenant).queues() == ["ingest", "ai", "film", "workflow"]


def test_a_hospital_defaults_to_a_dedicated_cloud_with_its_own_queues(hospital):
    slug = hospital.tenant.slug
    assert hospital.tenant.kind == "hospital"
    assert hospital.tenant.deployment == "dedicated_cloud"
    assert policy_for(hospital.tenant).queues() == [f"{slug}.ingest", f"{slug}.ai", f"{slug}.film", f"{slug}.workflow"]


def test_plan_quotas_apply_to_a_public_cloud_tenant_and_not_to_a_dedicated_one(platform):
    with platform.schema():
        standard = Tenant.objects.select_related("plan").get(slug="test-clinic-a")
        dedicated = Tenant.objects.get(slug="test-hospital-b")
    assert policy_for(standard).quotas() == Quotas(
        storage_bytes=standard.plan.storage_bytes_quota,
        studies_per_month=standard.plan.studies_per_month_quota,
        ai_jobs_per_month=standard.plan.ai_jobs_per_month_quota,
    )
    assert not policy_for(standard).quotas().unlimited
    assert policy_for(dedicated).quotas().unlimited


def test_a_clinic_may_be_placed_on_a_dedicated_cloud_explicitly(platform):
    result = provision_throwaway(platform, kind="clinic", deployment="dedicated_cloud")
    try:
        assert result.tenant.deployment == "dedicated_cloud"
        assert policy_for(result.tenant).queue_for("ingest") == f"{result.tenant.slug}.ingest"
    finally:
        discard_tenant(platform, result.tenant.slug)


# --- refused input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slug",
    ["Upper-case", "1-starts-with-digit", "double--hyphen", "under_score", "-leading", "trailing-", "", "a" * 41,
     "with space", "dot.ted", "ümlaut"],
)
def test_an_invalid_slug_is_refused_and_nothing_is_created(platform, slug):
    with platform.schema(), pytest.raises(InvalidInput) as refused:
        tenant_provision(slug=slug, name="Bad", kind="clinic")
    assert refused.value.code == "invalid_slug"
    assert refused.value.status == 400
    if slug:
        assert traces_of(platform, slug=slug, deployment="public_cloud") == TenantTraces(0, False, [], [], True)


@pytest.mark.parametrize("slug", ["public", "www", "api", "admin", "tenant-template", "platform"])
def test_a_reserved_slug_is_refused(platform, slug):
    with platform.schema():
        tenants_before = Tenant.objects.count()
        with pytest.raises(InvalidInput) as refused:
            tenant_provision(slug=slug, name="Reserved", kind="clinic")
        assert Tenant.objects.count() == tenants_before
    assert refused.value.code == "invalid_slug"
    assert "reserved" in refused.value.detail


def test_a_domain_with_an_underscore_is_refused_and_nothing_is_created(platform):
    slug = new_slug()
    with platform.schema(), pytest.raises(InvalidInput) as refused:
        tenant_provision(slug=slug, name="Underscore", kind="clinic", domain=f"bad_host-{unique_suffix()}.localhost")
    assert refused.value.code == "invalid_domain"
    assert traces_of(platform, slug=slug, deployment="public_cloud") == TenantTraces(0, False, [], [], True)


def test_a_duplicate_slug_is_refused_and_the_existing_tenant_is_untouched(platform):
    with platform.schema():
        before = Tenant.objects.values().get(slug="test-clinic-a")
        with pytest.raises(Conflict) as refused:
            tenant_provision(slug="test-clinic-a", name="Impostor", kind="hospital")
        after = Tenant.objects.values().get(slug="test-clinic-a")
    assert refused.value.code == "duplicate_slug"
    assert refused.value.status == 409
    assert after == before


def test_a_duplicate_domain_is_refused_and_nothing_is_created(platform):
    slug = new_slug()
    with platform.schema(), pytest.raises(Conflict) as refused:
        tenant_provision(slug=slug, name="Same domain", kind="clinic", domain="test-clinic-a.localhost")
    assert refused.value.code == "duplicate_domain"
    assert traces_of(platform, slug=slug, deployment="public_cloud") == TenantTraces(0, False, [], [], True)
    with platform.schema():
        assert list(Domain.objects.filter(domain="test-clinic-a.localhost").values_list("tenant__slug", flat=True)) == [
            "test-clinic-a"
        ]


@pytest.mark.parametrize(
    ("arguments", "code"),
    [({"kind": "laboratory"}, "invalid_kind"), ({"deployment": "on_premises"}, "invalid_deployment"),
     ({"plan_code": "no-such-plan"}, "invalid_plan")],
)
def test_an_unknown_kind_deployment_or_plan_is_refused(platform, arguments, code):
    slug = new_slug()
    values = {"slug": slug, "name": "Unknown", "kind": "clinic", **arguments}
    with platform.schema(), pytest.raises(InvalidInput) as refused:
        tenant_provision(**values)
    assert refused.value.code == code
    assert traces_of(platform, slug=slug, deployment="public_cloud") == TenantTraces(0, False, [], [], True)


# --- failure mid-way: everything rolled back -------------------------------------------------------------


class ProvisioningExploded(Exception):
    pass


def _explode(*args, **kwargs):
    raise ProvisioningExploded("simulated failure")


@pytest.mark.parametrize("deployment", ["public_cloud", "dedicated_cloud"])
def test_a_failure_while_creating_the_admin_leaves_no_schema_row_domain_or_bucket(platform, monkeypatch, deployment):
    slug = new_slug()
    monkeypatch.setattr("apps.accounts.services.user_create", _explode)
    with platform.schema(), pytest.raises(ProvisioningExploded):
        tenant_provision(slug=slug, name="Doomed", kind="clinic", deployment=deployment)
    expected = NOTHING_LEFT if deployment == "dedicated_cloud" else TenantTraces(0, False, [], [], True)
    assert traces_of(platform, slug=slug, deployment=deployment) == expected


def test_a_failure_at_the_last_step_rolls_back_schema_row_domain_and_admin(platform, monkeypatch):
    """The public audit row is written last, after schema, domain and admin exist."""
    import tenants.services

    real_audit_record = tenants.services.audit_record

    def fail_in_public(**kwargs):
        if kwargs.get("tenant_slug") == "public":
            raise ProvisioningExploded("simulated failure at the last step")
        return real_audit_record(**kwargs)

    slug = new_slug()
    monkeypatch.setattr(tenants.services, "audit_record", fail_in_public)
    with platform.schema(), pytest.raises(ProvisioningExploded):
        tenant_provision(slug=slug, name="Doomed late", kind="hospital")
    assert traces_of(platform, slug=slug, deployment="dedicated_cloud") == NOTHING_LEFT


def test_a_storage_failure_creates_nothing_in_the_database(platform, monkeypatch):
    def storage_down(self):
        raise StorageUnavailable("S3 is not reachable")

    slug = new_slug()
    monkeypatch.setattr("apps.storage.tenant_storage.TenantStorage.prepare", storage_down)
    with platform.schema(), pytest.raises(StorageUnavailable):
        tenant_provision(slug=slug, name="No storage", kind="hospital")
    assert traces_of(platform, slug=slug, deployment="dedicated_cloud") == NOTHING_LEFT


def test_the_slug_of_a_failed_provisioning_can_be_used_again(platform, monkeypatch):
    slug = new_slug()
    with monkeypatch.context() as patch:
        patch.setattr("apps.accounts.services.user_create", _explode)
        with platform.schema(), pytest.raises(ProvisioningExploded):
            tenant_provision(slug=slug, name="First try", kind="clinic")
    result = provision_throwaway(platform, kind="clinic", slug=slug)
    try:
        assert result.tenant.slug == slug
        with platform.schema():
            assert schema_exists(result.tenant.schema_name)
    finally:
        discard_tenant(platform, slug)
