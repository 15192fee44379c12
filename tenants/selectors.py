from functools import cache
from typing import Any

from django.db import InterfaceError, OperationalError, connection
from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from apps.core.rows import column_list, instance_from_row, qualified_table
from tenants.models import Domain, Plan, ReferralLink, Tenant, TenantStatus


def tenants_list() -> QuerySet[Tenant]:
    return Tenant.objects.exclude(schema_name=get_public_schema_name()).select_related("plan").prefetch_related("domains")


def tenants_active() -> list[Tenant]:
    """Every tenant that is not suspended (the public schema's own row excluded): what periodic work visits."""
    return list(Tenant.objects.exclude(schema_name=get_public_schema_name()).filter(status=TenantStatus.ACTIVE))


def tenant_by_slug(slug: str) -> Tenant | None:
    return tenants_list().filter(slug=slug).first()


def tenant_for_domain(domain: str) -> Tenant | None:
    """The tenant served on `domain`, read fresh on every request (a suspension or a plan change
    applies to the very next request) in one plain statement.

    It runs on the driver connection with schema-qualified names: going through Django's cursor
    would first make django-tenants send `SET search_path = public`, a second round trip.

    Host names are compared as DNS compares them: in any case, and with or without the trailing
    dot of a fully qualified name (RFC 4343, RFC 1034 §3.1); domains are stored lower case.

    The tenant's plan comes in the same statement: the storage policy of every archive request
    reads its quotas (tenants.deployment.policy_for), which would otherwise cost a query each."""
    sql = _tenant_for_domain_sql()
    hostname = domain.lower().removesuffix(".")
    # Usually the request's first statement, so it is also the connection's health check
    # (CONN_HEALTH_CHECKS): a connection kept from an earlier request that a database restart ended
    # fails it, and is replaced once, instead of a 503. Django's own check would send `SELECT 1`
    # first, a round trip on every request.
    database: Any = connection  # the health-check attributes are Django's, missing from its stubs
    unchecked = database.connection is not None and database.health_check_enabled and not database.health_check_done
    try:
        row = _tenant_row(sql, hostname)
    except (OperationalError, InterfaceError):
        if not unchecked:
            raise
        connection.close()
        row = _tenant_row(sql, hostname)
    database.health_check_done = True
    if row is None:
        return None
    tenant, plan_start = instance_from_row(Tenant, row)
    plan = None if row[plan_start] is None else instance_from_row(Plan, row, plan_start)[0]
    Tenant._meta.get_field("plan").set_cached_value(tenant, plan)
    return tenant


def _tenant_row(sql: str, hostname: str) -> tuple[object, ...] | None:
    connection.ensure_connection()
    # Driver errors become Django's (and mark the connection for a health check, as the ORM would).
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(sql, [hostname])
        return cursor.fetchone()


@cache
def _tenant_for_domain_sql() -> str:
    public = get_public_schema_name()
    return (
        f"SELECT {column_list(Tenant, 'tenant')}, {column_list(Plan, 'plan')} FROM {qualified_table(Tenant, public)} "
        f"AS tenant JOIN {qualified_table(Domain, public)} AS domain ON domain.tenant_id = tenant.id "
        f"LEFT JOIN {qualified_table(Plan, public)} AS plan ON plan.id = tenant.plan_id WHERE domain.domain = %s"
    )


def referral_links_list(*, clinic_slug: str | None = None, hospital_slug: str | None = None) -> QuerySet[ReferralLink]:
    links = ReferralLink.objects.select_related("clinic", "hospital")
    if clinic_slug:
        links = links.filter(clinic__slug=clinic_slug)
    if hospital_slug:
        links = links.filter(hospital__slug=hospital_slug)
    return links


def hospitals_linked_to_clinic(clinic: Tenant) -> QuerySet[Tenant]:
    return Tenant.objects.filter(referral_links_in__clinic=clinic, referral_links_in__active=True)
