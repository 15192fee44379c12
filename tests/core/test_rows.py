"""apps.core.rows: model instances from plain SQL must equal what the ORM loads, converters included."""

from __future__ import annotations

from django.db import connection

from apps.accounts.models import ApiToken, User
from apps.accounts.selectors import token_with_user
from apps.accounts.services import token_issue, user_create
from apps.accounts.tokens import hash_token
from apps.core.rows import column_list, instance_from_row, qualified_table
from tenants.models import ReferralLink, Tenant
from tenants.selectors import tenant_for_domain
from tests.support.platform import unique_suffix


def _field_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_a_row_with_a_json_field_loads_as_the_orm_loads_it(platform):
    with platform.schema():
        link = ReferralLink.objects.get(clinic__slug="test-clinic-a", hospital__slug="test-hospital-b")
        ReferralLink.objects.filter(pk=link.pk).update(sla_minutes={"urgent": 30, "routine": 1440})
        expected = ReferralLink.objects.get(pk=link.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {column_list(ReferralLink, 'link')} FROM {qualified_table(ReferralLink, 'public')} AS link "
                "WHERE link.id = %s", [link.pk],
            )
            loaded, next_column = instance_from_row(ReferralLink, cursor.fetchone())
        ReferralLink.objects.filter(pk=link.pk).update(sla_minutes=link.sla_minutes)
    assert _field_values(loaded) == _field_values(expected)
    assert loaded.sla_minutes == {"urgent": 30, "routine": 1440}  # a dict, not the JSON text
    assert next_column == len(ReferralLink._meta.concrete_fields)
    assert not loaded._state.adding  # a saved row, as the ORM marks it


def test_the_tenant_by_host_and_the_token_with_its_user_equal_the_orm_rows(platform):
    tenant = platform.tenants["clinic_a"]
    with platform.schema():
        by_host = tenant_for_domain(tenant.domains.get(is_primary=True).domain)
        assert _field_values(by_host) == _field_values(Tenant.objects.get(pk=tenant.pk))
        assert tenant_for_domain(f"nobody-{unique_suffix()}.example") is None
    with platform.schema("clinic_a"):
        user = user_create(username=f"rows-{unique_suffix()}", role="technologist")
        issued = token_issue(user=user, name="rows")
        token = token_with_user(hash_token(issued.secret))
        assert token is not None
        assert _field_values(token) == _field_values(ApiToken.objects.get(pk=issued.token.pk))
        assert _field_values(token.user) == _field_values(User.objects.get(pk=user.pk))
        assert token_with_user(hash_token(issued.secret + "x")) is None


def test_the_tenant_by_host_brings_its_plan_without_another_query(platform, django_assert_num_queries):
    from tenants.models import Plan

    tenant = platform.tenants["clinic_a"]
    with platform.schema():
        domain = tenant.domains.get(is_primary=True).domain
        original_plan_id = Tenant.objects.get(pk=tenant.pk).plan_id
        plan = Plan.objects.create(code=f"rows-{unique_suffix()}", name="Rows", storage_bytes_quota=123_456)
        try:
            Tenant.objects.filter(pk=tenant.pk).update(plan=plan)
            by_host = tenant_for_domain(domain)
            with django_assert_num_queries(0):
                assert by_host is not None and by_host.plan is not None
                assert _field_values(by_host.plan) == _field_values(plan)
            Tenant.objects.filter(pk=tenant.pk).update(plan=None)
            without = tenant_for_domain(domain)
            with django_assert_num_queries(0):
                assert without is not None and without.plan is None
        finally:
            Tenant.objects.filter(pk=tenant.pk).update(plan_id=original_plan_id)
            plan.delete()


def test_a_request_on_a_kept_connection_sends_no_separate_health_check(platform, monkeypatch):
    """The tenant lookup by host is the request's health check (tenants.selectors.tenant_for_domain):
    Django's own, a `SELECT 1` round trip before the first statement of every request, is not run."""
    from django.test import Client

    checks = []
    real_is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real_is_usable())
    client = Client(HTTP_HOST=platform.host("clinic_a"),
                    HTTP_AUTHORIZATION=f"Bearer {platform.tokens[('clinic_a', 'technologist')]}")
    with platform.db_blocker.unblock():
        for _ in range(2):
            # What request_started does on a server (Django's test client leaves it out): a kept
            # connection is marked for its health check.
            connection.close_if_unusable_or_obsolete()
            assert client.get("/api/v1/me/").status_code == 200
            assert connection.connection is not None  # kept for the next request (CONN_MAX_AGE)
    assert checks == []
