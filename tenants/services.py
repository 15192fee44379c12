"""Tenant use cases: provision, suspend, activate, delete, and link clinics to hospitals.

Provisioning clones a migrated template schema (django-tenants' TENANT_BASE_SCHEMA) instead of
replaying every migration, and runs in one database transaction: PostgreSQL DDL is transactional,
so a failure at any step leaves no schema, no row and no domain; the storage bucket or prefix made
before the failure is removed again.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import get_public_schema_name, schema_exists

from apps.accounts.roles import admin_role_for_kind
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.errors import Conflict, InvalidInput, NotFound
from apps.storage.tenant_storage import storage_for
from tenants.context import public_entered, tenant_entered
from tenants.deployment import default_deployment_for_kind
from tenants.models import (
    SLUG_PATTERN,
    Deployment,
    Domain,
    Plan,
    ReferralLink,
    Tenant,
    TenantKind,
    TenantStatus,
    default_ae_title_for_slug,
)
from tenants.schema_clone import schema_clone_from_template

logger = logging.getLogger(__name__)

RESERVED_SLUGS = frozenset({"public", "www", "api", "admin", "static", "media", "tenant-template", "platform"})
# PostgreSQL refuses to create schemas named pg_… (they are its own, PostgreSQL docs §5.10.5).
RESERVED_SCHEMA_PREFIX = "pg_"
TEMPLATE_LOCK_KEY = 0x1C10_0001  # pg advisory lock id: one process at a time builds the template


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    domain: str
    admin_username: str
    admin_password: str


def _reserved_schema_names() -> frozenset[str]:
    return frozenset({"information_schema", get_public_schema_name(), settings.TENANT_BASE_SCHEMA})


def schema_name_for_slug(slug: str) -> str:
    return slug.replace("-", "_")


def default_domain_for_slug(slug: str) -> str:
    return f"{slug}.{settings.TENANT_BASE_DOMAIN}"


def _validate_new_tenant(*, slug: str, kind: str, deployment: str, domain: str) -> None:
    if not re.match(SLUG_PATTERN, slug or "") or len(slug) > 40:
        raise InvalidInput(
            f"Slug {slug!r} is not valid: use 1-40 lowercase letters, digits and single hyphens, starting with a letter.",
            code="invalid_slug",
        )
    if slug in RESERVED_SLUGS:
        raise InvalidInput(f"Slug {slug!r} is reserved.", code="invalid_slug")
    schema_name = schema_name_for_slug(slug)
    if schema_name.startswith(RESERVED_SCHEMA_PREFIX) or schema_name in _reserved_schema_names():
        raise InvalidInput(
            f"Slug {slug!r} would name the schema {schema_name!r}, which PostgreSQL or the platform reserves "
            f"(names starting with {RESERVED_SCHEMA_PREFIX!r}, information_schema, the public and template schemas).",
            code="invalid_slug",
        )
    if kind not in TenantKind.values:
        raise InvalidInput(f"Kind must be one of {TenantKind.values}.", code="invalid_kind")
    if deployment not in Deployment.values:
        raise InvalidInput(f"Deployment must be one of {Deployment.values}.", code="invalid_deployment")
    if not re.match(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$", domain):
        raise InvalidInput(f"Domain {domain!r} is not a valid host name (no underscores).", code="invalid_domain")
    if Tenant.objects.filter(slug=slug).exists() or Tenant.objects.filter(schema_name=schema_name_for_slug(slug)).exists():
        raise Conflict(f"A tenant with slug {slug!r} already exists.", code="duplicate_slug")
    ae_title = default_ae_title_for_slug(slug)
    if Tenant.objects.filter(dimse_ae_title=ae_title).exists():
        raise Conflict(f"The DIMSE AE title {ae_title!r} (the slug cut to 16 characters) is another tenant's; "
                       "choose a slug that differs in its first 16 characters.", code="duplicate_ae_title")
    if Domain.objects.filter(domain=domain).exists():
        raise Conflict(f"Domain {domain!r} is already in use.", code="duplicate_domain")


def _tenant_migration_leaves() -> set[tuple[str, str]]:
    """The newest migration of every tenant app: what a current template must have applied."""
    tenant_labels = set()
    from django.apps import apps

    for app_path in settings.TENANT_APPS:
        tenant_labels.add(next(c.label for c in apps.get_app_configs() if c.name == app_path))
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {node for node in loader.graph.leaf_nodes() if node[0] in tenant_labels}


def template_schema_ensure() -> None:
    """Create or bring up to date the template schema that new tenants are cloned from."""
    template = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_LOCK_KEY])
    try:
        if schema_exists(template):
            with connection.cursor() as cursor:
                cursor.execute(f'SELECT app, name FROM "{template}".django_migrations')
                applied = {(app, name) for app, name in cursor.fetchall()}
            if _tenant_migration_leaves() <= applied:
                return
        else:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE SCHEMA "{template}"')
        logger.info("Migrating template schema %s", template)
        with public_entered():  # migrate_schemas leaves the connection in the schema it migrated
            call_command("migrate_schemas", tenant=True, schema_name=template, interactive=False, verbosity=0)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_LOCK_KEY])


@public_entered()
def tenant_provision(
    *,
    slug: str,
    name: str,
    kind: str,
    deployment: str | None = None,
    domain: str | None = None,
    plan_code: str | None = None,
    admin_username: str = "admin",
    admin_password: str | None = None,
    storage_bucket: str = "",
    actor: Actor | None = None,
) -> ProvisionedTenant:
    deployment = deployment or default_deployment_for_kind(kind)
    domain = (domain or default_domain_for_slug(slug)).lower()
    _validate_new_tenant(slug=slug, kind=kind, deployment=deployment, domain=domain)
    plan = None
    if plan_code:
        plan = Plan.objects.filter(code=plan_code).first()
        if plan is None:
            raise InvalidInput(f"No plan {plan_code!r}.", code="invalid_plan")
    template_schema_ensure()
    admin_password = admin_password or secrets.token_urlsafe(12)
    tenant = Tenant(
        schema_name=schema_name_for_slug(slug), slug=slug, name=name, kind=kind, deployment=deployment,
        plan=plan, storage_bucket=storage_bucket, dimse_ae_title=default_ae_title_for_slug(slug),
    )
    storage = storage_for(tenant)
    storage.prepare()
    try:
        with transaction.atomic():
            tenant.save()
            if not schema_clone_from_template(template=settings.TENANT_BASE_SCHEMA, schema=tenant.schema_name):
                tenant.create_schema(check_if_exists=False, verbosity=0)
            Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
            with tenant_entered(tenant):
                from apps.accounts.services import user_create

                user_create(
                    username=admin_username, role=admin_role_for_kind(kind), password=admin_password, actor=actor
                )
                audit_record(action=AuditAction.TENANT_PROVISION, actor=actor, object_type="tenant", object_id=slug)
            audit_record(
                action=AuditAction.TENANT_PROVISION, actor=actor, object_type="tenant", object_id=slug,
                detail={"kind": kind, "deployment": deployment, "domain": domain}, tenant_slug="public",
            )
    except BaseException:
        # The database rolled back; undo what storage holds for this tenant too.
        try:
            storage.delete_everything()
        except Exception:  # noqa: BLE001 - cleanup is best effort; the original error matters more
            logger.exception("Could not remove storage of failed tenant %s", slug)
        raise
    return ProvisionedTenant(tenant=tenant, domain=domain, admin_username=admin_username, admin_password=admin_password)


def _tenant_by_slug(slug: str, *, for_update: bool = False) -> Tenant:
    tenants = Tenant.objects.exclude(schema_name=get_public_schema_name())
    if for_update:
        tenants = tenants.select_for_update()
    tenant = tenants.filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"No tenant {slug!r}.", code="tenant_not_found")
    return tenant


@public_entered()
def tenant_suspend(*, slug: str, reason: str = "", actor: Actor | None = None) -> Tenant:
    with transaction.atomic():
        tenant = _tenant_by_slug(slug, for_update=True)
        tenant.status = TenantStatus.SUSPENDED
        tenant.suspended_reason = reason
        tenant.save(update_fields=["status", "suspended_reason"])
        audit_record(
            action=AuditAction.TENANT_SUSPEND, actor=actor, object_type="tenant", object_id=slug,
            detail={"reason": reason}, tenant_slug="public",
        )
    return tenant


@public_entered()
def tenant_activate(*, slug: str, actor: Actor | None = None) -> Tenant:
    with transaction.atomic():
        tenant = _tenant_by_slug(slug, for_update=True)
        tenant.status = TenantStatus.ACTIVE
        tenant.suspended_reason = ""
        tenant.save(update_fields=["status", "suspended_reason"])
        audit_record(action=AuditAction.TENANT_ACTIVATE, actor=actor, object_type="tenant", object_id=slug, tenant_slug="public")
    return tenant


@public_entered()
def tenant_delete(*, slug: str, actor: Actor | None = None) -> None:
    """Delete a suspended tenant: its schema, its domains, its links and every stored object."""
    with transaction.atomic():
        tenant = _tenant_by_slug(slug, for_update=True)
        if tenant.status != TenantStatus.SUSPENDED:
            raise Conflict("Suspend the tenant before deleting it.", code="tenant_not_suspended")
        storage = storage_for(tenant)
        tenant.delete(force_drop=True)
        audit_record(action=AuditAction.TENANT_DELETE, actor=actor, object_type="tenant", object_id=slug, tenant_slug="public")
    # Objects go after the rows commit: a failed commit must not leave a tenant without its data.
    storage.delete_everything()


@public_entered()
def referral_link_create(
    *, clinic_slug: str, hospital_slug: str, sla_minutes: dict[str, int] | None = None, actor: Actor | None = None
) -> ReferralLink:
    with transaction.atomic():
        clinic = _tenant_by_slug(clinic_slug)
        hospital = _tenant_by_slug(hospital_slug)
        if clinic.kind != TenantKind.CLINIC or hospital.kind != TenantKind.HOSPITAL:
            raise InvalidInput("A referral link goes from a clinic to a hospital.", code="invalid_referral")
        link, created = ReferralLink.objects.update_or_create(
            clinic=clinic, hospital=hospital, defaults={"active": True, "sla_minutes": sla_minutes or {}}
        )
        audit_record(
            action=AuditAction.REFERRAL_LINK, actor=actor, object_type="referral_link", object_id=link.pk,
            detail={"clinic": clinic_slug, "hospital": hospital_slug, "created": created}, tenant_slug="public",
        )
    return link


@public_entered()
def referral_link_deactivate(*, link_id: int, actor: Actor | None = None) -> ReferralLink:
    with transaction.atomic():
        link = ReferralLink.objects.select_for_update().filter(pk=link_id).first()
        if link is None:
            raise NotFound("No such referral link.")
        link.active = False
        link.save(update_fields=["active"])
        audit_record(action=AuditAction.REFERRAL_UNLINK, actor=actor, object_type="referral_link", object_id=link.pk, tenant_slug="public")
    return link
