"""The hospital's read access to a consult's studies in the clinic's archive.

A grant is not a separate row: it is the consult itself. The hospital may read exactly the
consult's studies while the consult is open (accepted … finalized, amended) and until
`grant_expires_at` (closing time plus CONSULT_GRANT_GRACE_SECONDS) after it closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import tenant_context

from apps.archive.models import Study
from apps.audit.services import Actor, audit_record
from apps.consult_routing.models import ConsultRoute
from apps.consults.state_machine import GRANT_STATES
from tenants.models import Tenant, TenantKind, TenantStatus
from tenants.queues import current_tenant


def grant_grace() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "CONSULT_GRANT_GRACE_SECONDS", 3600)))


@contextmanager
def in_tenant(tenant: Tenant) -> Iterator[None]:
    """Run the block in `tenant`'s schema (and give the previous tenant back afterwards)."""
    with tenant_context(tenant):
        yield


def granted_route_for_study(*, hospital: Tenant, study_instance_uid: str) -> ConsultRoute | None:
    """The consult through which `hospital` may read this study now, if any."""
    live = Q(state__in=GRANT_STATES) | Q(grant_expires_at__gt=timezone.now())
    return (ConsultRoute.objects.select_related("clinic")
            .filter(live, hospital=hospital, study_instance_uids__contains=[study_instance_uid],
                    clinic__status=TenantStatus.ACTIVE)
            .order_by("-created_at").first())


@contextmanager
def study_read_through_grant(*, study_instance_uid: str, actor: Actor, path: str) -> Iterator[Tenant | None]:
    """For a hospital asking for a study it does not hold: run the block in the schema of the clinic
    that granted it through a consult (yielding that clinic), with the read audited on both sides.
    Otherwise the block runs unchanged (yielding None) and finds what the tenant's own archive has."""
    tenant = current_tenant()
    if tenant.kind != TenantKind.HOSPITAL or Study.objects.filter(
            study_instance_uid=study_instance_uid, deleted_at__isnull=True).exists():
        yield None
        return
    route = granted_route_for_study(hospital=tenant, study_instance_uid=study_instance_uid)
    if route is None:
        yield None
        return
    detail = {"study": study_instance_uid, "path": path, "clinic": route.clinic.slug, "hospital": tenant.slug}
    with transaction.atomic():
        audit_record(action="consult.grant_read", actor=actor, object_type="consult", object_id=route.pk,
                     detail=detail)
        with in_tenant(route.clinic):
            audit_record(action="consult.grant_read", actor=actor, object_type="consult", object_id=route.pk,
                         detail=detail)
    with in_tenant(route.clinic):
        yield route.clinic
