"""Documents sent with a consult (referral letter, prior reports): stored by the clinic, read by the
hospital. PDF only: a hospital opens them as they are.

Who on the hospital's side reads them when (docs/consults.md): coordinators from submission on,
because the referral letter is what they accept or reject on; radiologists once the consult is
accepted, as they read its images; nobody after the grant ends.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Protocol

from django.conf import settings
from django.db import transaction

from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.consult_routing.models import ConsultRoute, ConsultState
from apps.consults.grants import grant_is_live
from apps.consults.models import AttachmentKind, ConsultAttachment
from apps.consults.permissions import COORDINATOR_ROLES
from apps.consults.services import ConsultNotFound
from apps.consults.state_machine import CLOSED_STATES
from apps.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant, tenant_entered

PDF_MAGIC = b"%PDF-"


class ByteSource(Protocol):
    """A file-like object to read an upload from (an UploadedFile, a BytesIO)."""

    def read(self, size: int, /) -> bytes: ...


class AttachmentTooLarge(DomainError):
    code = "attachment_too_large"
    status = 413


class AttachmentNotPdf(DomainError):
    code = "attachment_not_pdf"
    status = 415


class ConsultNotAccepted(Forbidden):
    """A radiologist asked for a document of a consult the hospital has not accepted yet."""

    code = "consult_not_accepted"


# Before acceptance: the consult waits for the coordinators' decision.
AWAITING_DECISION_STATES = frozenset({ConsultState.SUBMITTED, ConsultState.RETURNED_FOR_INFO})


def max_attachment_bytes() -> int:
    return settings.CONSULT_ATTACHMENT_MAX_BYTES


def safe_filename(name: str) -> str:
    """The last path component, in plain characters only (never used as a storage key)."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .") or "document"
    return cleaned[:100] if cleaned.lower().endswith(".pdf") else f"{cleaned[:96]}.pdf"


def consult_attachment_add(
    *, route_id: uuid.UUID | str, actor: Actor, uploaded_by: str, kind: str, filename: str, stream: ByteSource,
) -> ConsultAttachment:
    if kind not in AttachmentKind.values:
        raise InvalidInput(f"kind must be one of {', '.join(AttachmentKind.values)}.", code="invalid_kind")
    clinic = current_tenant()
    route = ConsultRoute.objects.filter(pk=route_id, clinic=clinic).first()
    if route is None:
        raise ConsultNotFound("No such consult for this tenant.")
    if route.state in CLOSED_STATES:
        raise Conflict("The consult is closed.", code="consult_closed")
    limit = max_attachment_bytes()
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise AttachmentTooLarge(f"An attachment may have at most {limit} bytes.")
    if not data.startswith(PDF_MAGIC):
        raise AttachmentNotPdf("Attachments are PDF documents.")
    key = f"consults/{route.pk}/attachments/{uuid.uuid4().hex}.pdf"
    storage = storage_for(clinic)
    storage.put_bytes(key, data, content_type="application/pdf")
    try:
        with transaction.atomic():
            attachment = ConsultAttachment.objects.create(
                route_id=route.pk, kind=kind, filename=safe_filename(filename), content_type="application/pdf",
                size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), object_key=key, uploaded_by=uploaded_by)
            detail = {"attachment": attachment.pk, "kind": kind, "bytes": len(data)}
            audit_record(action=AuditAction.CONSULT_ATTACHMENT_ADD, actor=actor, object_type="consult", object_id=route.pk,
                         detail=detail)
            with tenant_entered(route.hospital):
                audit_record(action=AuditAction.CONSULT_ATTACHMENT_ADD, actor=actor, object_type="consult",
                             object_id=route.pk, detail=detail)
    except Exception:
        storage.delete(key)  # the row was not written: keep no orphan object
        raise
    return attachment


def _readable_route(route_id: uuid.UUID | str, *, reader_role: str) -> ConsultRoute:
    """The consult, if the current tenant is its clinic, or its hospital and `reader_role` may read
    the documents now (the rule of the module docstring)."""
    tenant = current_tenant()
    route = ConsultRoute.objects.select_related("clinic", "hospital").filter(pk=route_id).first()
    if route is None:
        raise ConsultNotFound("No such consult for this tenant.")
    if route.clinic_id == tenant.pk:
        return route
    if route.hospital_id != tenant.pk or route.state == ConsultState.DRAFT:
        raise ConsultNotFound("No such consult for this tenant.")
    if route.state in AWAITING_DECISION_STATES:
        if reader_role in COORDINATOR_ROLES:
            return route
        raise ConsultNotAccepted("A consult's documents are read by radiologists once it is accepted.")
    if not grant_is_live(route):
        raise ConsultNotFound("No such consult for this tenant.")
    return route


def consult_attachments(*, route_id: uuid.UUID | str, reader_role: str) -> list[ConsultAttachment]:
    route = _readable_route(route_id, reader_role=reader_role)
    with tenant_entered(route.clinic):
        return list(ConsultAttachment.objects.filter(route_id=route.pk).order_by("created_at", "pk"))


def consult_attachment_read(
    *, route_id: uuid.UUID | str, attachment_id: int, actor: Actor, reader_role: str,
) -> tuple[ConsultAttachment, bytes]:
    route = _readable_route(route_id, reader_role=reader_role)
    reader = current_tenant()
    with tenant_entered(route.clinic):
        attachment = ConsultAttachment.objects.filter(route_id=route.pk, pk=attachment_id).first()
        if attachment is None:
            raise NotFound("No such attachment.", code="attachment_not_found")
        data = storage_for(route.clinic).get_bytes(attachment.object_key)
        with transaction.atomic():
            audit_record(action=AuditAction.CONSULT_ATTACHMENT_READ, actor=actor, object_type="consult", object_id=route.pk,
                         detail={"attachment": attachment.pk, "by_tenant": reader.slug})
    if reader.pk != route.clinic_id:
        audit_record(action=AuditAction.CONSULT_ATTACHMENT_READ, actor=actor, object_type="consult", object_id=route.pk,
                     detail={"attachment": attachment.pk})
    return attachment, data
