"""The hospital's read access to a consult's studies in the clinic's archive.

A grant is not a separate row: it is the consult itself. The hospital may read exactly the
consult's studies while the consult is open (accepted … finalized, amended) and until
`grant_expires_at` (closing time plus CONSULT_GRANT_GRACE_SECONDS) after it closes.

Every read through a grant names its consult (the consult-scoped DICOMweb root
`/consults/{consult_id}/dicomweb`, see docs/consults.md): a grant is never looked up by
StudyInstanceUID alone, because two clinics (or two copies in one hospital) may hold studies with
the same UID and a lookup by UID would silently answer with another patient's images.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.consult_routing.models import ConsultRoute
from apps.consults.state_machine import GRANT_STATES
from apps.core.errors import NotFound, StudyNotFound
from tenants.context import current_tenant, tenant_entered
from tenants.models import Tenant, TenantStatus


class ConsultGrantNotFound(NotFound):
    """No consult of this hospital grants a read now: unknown, another tenant's, not yet accepted,
    or past its grant. One answer for all of them, so the answer tells nothing about the others."""

    code = "consult_not_found"


@dataclass(frozen=True)
class ConsultGrant:
    """A live grant: the consult, the clinic whose archive it opens, and exactly which studies."""

    route: ConsultRoute
    clinic: Tenant
    study_instance_uids: frozenset[str]


def grant_grace() -> timedelta:
    return timedelta(seconds=settings.CONSULT_GRANT_GRACE_SECONDS)


def consult_service_path(consult_id: uuid.UUID | str) -> str:
    """The path of the consult's DICOMweb root on the hospital's domain (config/urls_tenant.py)."""
    return f"/consults/{consult_id}/dicomweb"


def _live() -> Q:
    return Q(state__in=GRANT_STATES) | Q(grant_expires_at__gt=timezone.now())


def grant_is_live(route: ConsultRoute) -> bool:
    """Whether the hospital may read the consult's studies now (the rule of the module docstring)."""
    if route.state in GRANT_STATES:
        return True
    return route.grant_expires_at is not None and route.grant_expires_at > timezone.now()


def live_grant(*, hospital: Tenant, consult_id: uuid.UUID | str) -> ConsultGrant | None:
    """The consult `consult_id` of `hospital`, if it grants a read now and its clinic is active."""
    route = (ConsultRoute.objects.select_related("clinic")
             .filter(_live(), pk=consult_id, hospital=hospital, clinic__status=TenantStatus.ACTIVE).first())
    if route is None:
        return None
    return ConsultGrant(route=route, clinic=route.clinic, study_instance_uids=frozenset(route.study_instance_uids))


@contextmanager
def consult_read_through_grant(
    *, consult_id: uuid.UUID | str, actor: Actor, path: str, study_instance_uid: str | None = None,
) -> Iterator[ConsultGrant]:
    """Run the block in the schema of the clinic that granted consult `consult_id` to the current
    tenant (a hospital), yielding the grant, with the read audited in both tenants.

    Raises ConsultGrantNotFound when the consult grants nothing now, and StudyNotFound when
    `study_instance_uid` is not one of the consult's studies (whatever else either archive holds).
    """
    hospital = current_tenant()
    grant = live_grant(hospital=hospital, consult_id=consult_id)
    if grant is None:
        raise ConsultGrantNotFound("No consult of this hospital grants a read of these images now.")
    if study_instance_uid is not None and study_instance_uid not in grant.study_instance_uids:
        raise StudyNotFound("This consult has no such study.")
    detail = {"consult": str(grant.route.pk), "study": study_instance_uid or "", "path": path,
              "clinic": grant.clinic.slug, "hospital": hospital.slug}
    with transaction.atomic():
        audit_record(action=AuditAction.CONSULT_GRANT_READ, actor=actor, object_type="consult", object_id=grant.route.pk,
                     detail=detail)
        with tenant_entered(grant.clinic):
            audit_record(action=AuditAction.CONSULT_GRANT_READ, actor=actor, object_type="consult",
                         object_id=grant.route.pk, detail=detail)
    with tenant_entered(grant.clinic):
        yield grant


def chunks_in_tenant(tenant: Tenant, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, each produced inside `tenant`'s schema.

    A streamed answer makes its body after the view has returned (and left the clinic's schema);
    parts rendered or read then must still see the clinic's archive and its caches, never the
    hospital's, which may hold objects under the same UIDs.
    """
    iterator = iter(chunks)
    while True:
        with tenant_entered(tenant):
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk
