"""DIMSE business rules: which association is admitted, for which tenant, how a received instance is
stored, and the registered peers (docs/dimse.md).

The listener (apps.dimse.server) is one process for every tenant: the called AE title names the
tenant, and a peer registered for that tenant by calling AE title and source address is the only one
admitted (PS3.8 §7.1.1.9: A-ASSOCIATE-RJ with result, source and reason). Received instances go
through the same ingest service as STOW-RS (apps.archive.services.ingest), as the peer sent them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import IntEnum

from django.db import IntegrityError, transaction
from django_tenants.utils import get_public_schema_name

from apps.archive.services.ingest import StoreReport, StreamPart, instances_store
from apps.audit.actions import AuditAction
from apps.audit.models import Outcome
from apps.audit.services import Actor, audit_record
from apps.core.errors import Conflict, DomainError, NotFound
from apps.dicom.status import FailureReason
from apps.dimse.addressing import address_normalized, ae_title_normalized, valid_peer
from apps.dimse.models import DimsePeer
from tenants.context import public_entered, tenant_entered
from tenants.models import Tenant

VIA = "dimse"
SUCCESS = 0x0000


class RejectResult(IntEnum):
    """A-ASSOCIATE-RJ Result (PS3.8 §9.3.4)."""

    PERMANENT = 0x01
    TRANSIENT = 0x02


class RejectReason(IntEnum):
    """A-ASSOCIATE-RJ Reason/Diag. when the source is the DUL service user (PS3.8 §9.3.4)."""

    NO_REASON_GIVEN = 0x01
    CALLING_AE_TITLE_NOT_RECOGNIZED = 0x03
    CALLED_AE_TITLE_NOT_RECOGNIZED = 0x07


SERVICE_USER = 0x01  # Result Source: the association was refused by this service, not the protocol


class AssociationRefused(DomainError):
    """An association that is not admitted, with the A-ASSOCIATE-RJ fields to answer it with."""

    code = "dimse_association_refused"
    status = 403

    def __init__(self, detail: str, *, code: str, result: RejectResult, reason: RejectReason) -> None:
        super().__init__(detail, code=code)
        self.result = result
        self.reason = reason
        self.source = SERVICE_USER


@dataclass(frozen=True)
class AssociationGrant:
    """An admitted association: the tenant it stores into, and who is on the other end."""

    tenant: Tenant
    actor: Actor


def peer_actor(*, calling_ae_title: str, address: str) -> Actor:
    """The audit trail's actor for a DIMSE peer: its calling AE title and source address."""
    calling = ae_title_normalized(calling_ae_title)
    return Actor(kind="dimse_peer", identifier=calling, name=calling, client_ip=address)


def _refuse(*, tenant: Tenant | None, actor: Actor, called: str, error: AssociationRefused) -> AssociationRefused:
    detail = {"called_ae_title": called, "calling_ae_title": actor.name, "reason": error.code}
    if tenant is None:
        with public_entered():
            audit_record(action=AuditAction.DIMSE_ASSOCIATION_REJECT, actor=actor, object_type="dimse_association",
                         object_id=called, outcome=Outcome.DENIED, detail=detail)
    else:
        with tenant_entered(tenant):
            audit_record(action=AuditAction.DIMSE_ASSOCIATION_REJECT, actor=actor, object_type="dimse_association",
                         object_id=called, outcome=Outcome.DENIED, detail=detail)
    return error


def association_admit(*, called_ae_title: str, calling_ae_title: str, address: str) -> AssociationGrant:
    """Decide an A-ASSOCIATE-RQ and audit the decision in the tenant's trail (the public one when
    no tenant has the called AE title). Raises AssociationRefused with the A-ASSOCIATE-RJ fields:

    - no tenant has the called AE title: rejected-permanent, called AE title not recognized;
    - the tenant is suspended: rejected-transient, no reason given (it may be activated again);
    - no peer of the tenant has the calling AE title at the source address: rejected-permanent,
      calling AE title not recognized (the AE and the address are one registration).
    """
    called = ae_title_normalized(called_ae_title)
    actor = peer_actor(calling_ae_title=calling_ae_title, address=address_normalized(address))
    with public_entered():
        tenant = (Tenant.objects.exclude(schema_name=get_public_schema_name())
                  .filter(dimse_ae_title=called).first())
        if tenant is None:
            raise _refuse(tenant=None, actor=actor, called=called, error=AssociationRefused(
                f"No tenant has the AE title {called!r}.", code="unknown_called_ae_title",
                result=RejectResult.PERMANENT, reason=RejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED))
        if not tenant.is_active:
            raise _refuse(tenant=tenant, actor=actor, called=called, error=AssociationRefused(
                f"The tenant {tenant.slug!r} is suspended.", code="tenant_suspended",
                result=RejectResult.TRANSIENT, reason=RejectReason.NO_REASON_GIVEN))
        registered = DimsePeer.objects.filter(tenant=tenant, ae_title=actor.name)
        if not registered.filter(host=actor.client_ip).exists():
            code = "peer_address_not_registered" if registered.exists() else "unknown_calling_ae_title"
            raise _refuse(tenant=tenant, actor=actor, called=called, error=AssociationRefused(
                f"No peer {actor.name!r} at {actor.client_ip} is registered for {called!r}.", code=code,
                result=RejectResult.PERMANENT, reason=RejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED))
    with tenant_entered(tenant):
        audit_record(action=AuditAction.DIMSE_ASSOCIATION_ACCEPT, actor=actor, object_type="dimse_association",
                     object_id=called, detail={"called_ae_title": called, "calling_ae_title": actor.name})
    return AssociationGrant(tenant=tenant, actor=actor)


def store_status(report: StoreReport) -> int:
    """The C-STORE response status of one instance's store report (PS3.4 §B.2.3): the failure
    reason when it failed (the same codes STOW-RS reports), a warning when it was stored with one."""
    if report.failed:
        return int(report.failed[0].reason)
    if report.stored and report.stored[0].warnings:
        return int(report.stored[0].warnings[0][0])
    if report.stored:
        return SUCCESS
    return int(FailureReason.PROCESSING_FAILURE)


def instance_receive(*, grant: AssociationGrant, part10: bytes) -> int:
    """Store one instance received over C-STORE into the association's tenant, byte for byte as the
    peer sent it (the file meta information and the data set in its transfer syntax), through the
    ingest service STOW-RS uses: same validation, quotas, audit row and follow-up work."""
    with tenant_entered(grant.tenant):
        report = instances_store(parts=[StreamPart(io.BytesIO(part10))], actor=grant.actor, via=VIA)
    return store_status(report)


# --- registered peers -----------------------------------------------------------------------------


def dimse_peer_add(*, tenant: Tenant, ae_title: str, host: str, port: int | None = None, actor: Actor) -> DimsePeer:
    """Register a peer for the tenant: associations from `ae_title` at `host` are admitted."""
    title, address = valid_peer(ae_title=ae_title, host=host, port=port)
    with tenant_entered(tenant):
        try:
            with transaction.atomic():
                peer = DimsePeer.objects.create(tenant=tenant, ae_title=title, host=address, port=port)
                audit_record(action=AuditAction.DIMSE_PEER_ADD, actor=actor, object_type="dimse_peer",
                             object_id=peer.pk, detail={"ae_title": title, "host": address, "port": port})
        except IntegrityError as error:
            raise Conflict(f"The peer {title!r} at {address} is already registered.",
                           code="duplicate_dimse_peer") from error
    return peer


def dimse_peer_remove(*, tenant: Tenant, peer_id: int, actor: Actor) -> None:
    """Remove one of the tenant's peers: its next association is rejected."""
    with tenant_entered(tenant), transaction.atomic():
        peer = DimsePeer.objects.select_for_update().filter(tenant=tenant, pk=peer_id).first()
        if peer is None:
            raise NotFound(f"No DIMSE peer {peer_id}.", code="dimse_peer_not_found")
        detail = {"ae_title": peer.ae_title, "host": peer.host, "port": peer.port}
        peer.delete()
        audit_record(action=AuditAction.DIMSE_PEER_REMOVE, actor=actor, object_type="dimse_peer", object_id=peer_id,
                     detail=detail)

