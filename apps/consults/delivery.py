"""Delivery of a signed report to the clinic: a PDF in the clinic's storage and a DICOM SR in its
archive, then the consult is marked delivered.

Runs in the clinic's schema (a `workflow` task of the clinic tenant). Idempotent: the SR's UIDs are
derived from the consult and the report version, and its bytes from the signed report alone, so a
re-run after a crash finds the SR already stored (or stores identical bytes, which the archive
accepts as the same instance) and never makes a second one.

A delivery that cannot succeed (the study's objects unreadable, the archive refusing the SR, the
SR not buildable from the study's headers) is recorded on the consult with its reason by
`consult_delivery_failure_record`, audited on both sides and told to the people concerned; the
consult stays `finalized` (or `amended`) and a coordinator asks for a new attempt with
`consult_delivery_retry` (docs/consults.md).
"""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from apps.accounts.roles import Role
from apps.archive.models import Instance
from apps.archive.retrieval import read_dataset
from apps.archive.selectors import InstanceFile, instances_for_retrieval
from apps.archive.services.ingest import StreamPart, instances_store
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record, audited_move
from apps.consult_routing.models import ConsultRoute, ConsultState
from apps.consults.events import ConsultDelivered, ReportSnapshot, consult_delivered_subscribers
from apps.consults.grants import grant_grace
from apps.consults.models import ClinicConsult, ClinicReportVersion
from apps.consults.notifications import users_email_on_commit
from apps.consults.report_pdf import EarlierVersion, ReportDocument, report_pdf_bytes
from apps.consults.services import consult_event_emit
from apps.consults.state_machine import CONSULT_WORKFLOW, next_state
from apps.core.errors import DomainError
from apps.dicom.report_sr import SignedReport, SrReference, build_report_sr, report_sr_bytes
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.context import current_tenant, tenant_entered

DELIVERY_ACTOR = Actor.system("consult-delivery")


class DeliveryFailed(DomainError):
    code = "delivery_failed"
    status = 500


# Who hears that a delivery failed: the hospital's people who can ask for it again, the clinic's admins.
_HOSPITAL_DELIVERY_ROLES = frozenset({Role.CONSULT_COORDINATOR, Role.HOSPITAL_ADMIN})
_CLINIC_DELIVERY_ROLES = frozenset({Role.CLINIC_ADMIN})


def report_pdf_key(route_id: uuid.UUID | str, version: int) -> str:
    return f"consults/{route_id}/report-v{version}.pdf"


def report_sr_uids(route_id: uuid.UUID | str, version: int) -> tuple[str, str]:
    """(SeriesInstanceUID, SOPInstanceUID) of a report version's SR: the same on every run."""
    seed = f"imaging-cloud-consult-report:{route_id}:{version}"
    return generate_uid(entropy_srcs=[seed, "series"]), generate_uid(entropy_srcs=[seed, "instance"])


def consult_deliver(*, route_id: uuid.UUID | str) -> str:
    """Deliver every signed version of the consult's report not delivered yet (the original, then each
    addendum: each keeps its own PDF and SR); returns what happened.

    A top-level action (a durable transaction): the PDFs and SRs it stores are named only by the rows it
    commits, so it refuses to run inside an outer transaction whose rollback would orphan them."""
    with transaction.atomic(durable=True):
        route = ConsultRoute.objects.select_for_update().select_related("clinic", "hospital").filter(
            pk=route_id, clinic=current_tenant()).first()
        if route is None:
            return "gone"
        request = ClinicConsult.objects.select_for_update().get(route_id=route.pk)
        if request.report is None or request.delivered_version >= request.report_version:
            return "already_delivered"
        if route.state not in (ConsultState.FINALIZED, ConsultState.AMENDED):
            return f"not_deliverable_{route.state}"
        storage = storage_for(route.clinic)
        study_files = [file for uid in route.study_instance_uids for file in instances_for_retrieval(study_instance_uid=uid)]
        if not study_files:
            raise DeliveryFailed("The consult's studies are no longer in the clinic's archive.")
        versions = list(ClinicReportVersion.objects.select_for_update().filter(route_id=route.pk).order_by("version"))
        if not versions:  # signed before versions were kept (migration 0005 copies those): keep the one received
            versions = [ClinicReportVersion.objects.create(route_id=route.pk, version=request.report_version,
                                                           kind=request.report["kind"], report=request.report)]
        now = timezone.now()
        for index, version_row in enumerate(versions):
            if not version_row.pdf_key:
                _version_deliver(route=route, request=request, version_row=version_row, earlier=versions[:index],
                                 study_files=study_files, storage=storage, delivered_at=now)
        latest = versions[-1]
        report, version, pdf_key, sop_uid = latest.report, latest.version, latest.pdf_key, latest.sr_sop_instance_uid
        in_study = {file.sop_instance_uid for file in study_files}
        key_images = [uid for uid in report.get("key_image_sop_instance_uids") or [] if uid in in_study]

        request.report_pdf_key = pdf_key
        request.report_sr_sop_instance_uid = sop_uid
        request.delivered_version = version
        request.save(update_fields=["report_pdf_key", "report_sr_sop_instance_uid", "delivered_version"])
        before = route.state
        detail = {"from": before, "to": next_state(before, "deliver"), "version": version, "sr": sop_uid,
                  "pdf": pdf_key}
        audited_move(route, CONSULT_WORKFLOW, "deliver", actor=DELIVERY_ACTOR, action=AuditAction.CONSULT_DELIVER,
                     object_type="consult", detail=detail, delivery_failure="", delivery_failed_at=None,
                     delivered_at=now, closed_at=now, grant_expires_at=now + grant_grace())
        event = ConsultDelivered(
            tenant_slug=route.clinic.slug, consult_id=request.pk, study_instance_uids=tuple(route.study_instance_uids),
            key_image_sop_instance_uids=tuple(key_images),
            report=_snapshot_of(route, latest), report_pdf_key=pdf_key,
            earlier_reports=tuple(_snapshot_of(route, row) for row in versions[:-1]),
        )
        for _, subscriber in consult_delivered_subscribers():
            subscriber(event)
        consult_event_emit(route, action="deliver", previous_state=before)
    with transaction.atomic(), tenant_entered(route.hospital):
        audit_record(action=AuditAction.CONSULT_DELIVER, actor=DELIVERY_ACTOR, object_type="consult", object_id=route.pk,
                     detail=detail)
    users_email_on_commit(route.clinic, subject=f"Consult report from {route.hospital.name}",
                          body=f"The report of consult {route.pk} (version {version}) is in your archive.",
                          usernames=(request.requested_by,))
    return "delivered"


def _version_deliver(
    *, route: ConsultRoute, request: ClinicConsult, version_row: ClinicReportVersion,
    earlier: list[ClinicReportVersion], study_files: list[InstanceFile], storage: TenantStorage, delivered_at: datetime,
) -> None:
    """Store one signed version's PDF and SR in the clinic (each step skipped when already done)."""
    report, version = version_row.report, version_row.version
    signed_at = datetime.fromisoformat(report["signed_at"])
    by_uid = {file.sop_instance_uid: file for file in study_files}
    key_images = [uid for uid in report.get("key_image_sop_instance_uids") or [] if uid in by_uid]
    evidence_files = [by_uid[uid] for uid in key_images] or [study_files[0]]
    evidence = [read_dataset(storage, file) for file in evidence_files]

    pdf_key = report_pdf_key(route.pk, version)
    if not storage.exists(pdf_key):
        document = _report_document(route=route, request=request, report=report, first=evidence[0],
                                    key_images=key_images, version=version, earlier=earlier)
        storage.put_bytes(pdf_key, _pdf_bytes(document), content_type="application/pdf")

    series_uid, sop_uid = report_sr_uids(route.pk, version)
    if not Instance.objects.filter(sop_instance_uid=sop_uid, deleted_at__isnull=True).exists():
        try:
            sr = build_report_sr(
                report=SignedReport(
                    findings=report["findings"], impression=report["impression"],
                    recommendations=report["recommendations"], signed_by=report["signed_by"],
                    signed_at=signed_at, institution_name=route.hospital.name, version=version,
                    is_addendum=version_row.is_addendum,
                ),
                source_datasets=evidence, key_image_sop_instance_uids=key_images,
                series_instance_uid=series_uid, sop_instance_uid=sop_uid,
                predecessor_documents=[_sr_reference(route, row.version, evidence[0]) for row in earlier],
            )
        except (ValueError, TypeError, AttributeError) as error:
            # The builder validates what it copies from the study's headers; a header it cannot
            # use is a fact about this study, not a passing fault: record it, do not retry.
            raise DeliveryFailed(f"The report SR could not be built from the study's headers: {error}") from error
        stored = instances_store(parts=[StreamPart(io.BytesIO(report_sr_bytes(sr)))], actor=DELIVERY_ACTOR,
                                 via="consult-report")
        if stored.failed or not stored.stored:
            reasons = "; ".join(item.detail for item in stored.failed)
            raise DeliveryFailed(f"The clinic's archive refused the report SR: {reasons}")
    version_row.pdf_key, version_row.sr_sop_instance_uid, version_row.delivered_at = pdf_key, sop_uid, delivered_at
    version_row.save(update_fields=["pdf_key", "sr_sop_instance_uid", "delivered_at"])


def _sr_reference(route: ConsultRoute, version: int, study_header: Dataset) -> SrReference:
    series_uid, sop_uid = report_sr_uids(route.pk, version)
    return SrReference(study_instance_uid=str(study_header.StudyInstanceUID), series_instance_uid=series_uid,
                       sop_instance_uid=sop_uid)


def _snapshot_of(route: ConsultRoute, version_row: ClinicReportVersion) -> ReportSnapshot:
    report = version_row.report
    return ReportSnapshot(
        findings=report["findings"], impression=report["impression"], recommendations=report["recommendations"],
        signed_by=report["signed_by"], signed_at=datetime.fromisoformat(report["signed_at"]),
        hospital_name=route.hospital.name, modality_template=report["modality_template"],
        version=version_row.version, is_addendum=version_row.is_addendum,
    )


def _report_document(
    *, route: ConsultRoute, request: ClinicConsult, report: dict[str, Any], first: Dataset, key_images: list[str],
    version: int, earlier: list[ClinicReportVersion],
) -> ReportDocument:
    return ReportDocument(
        hospital_name=route.hospital.name, clinic_name=route.clinic.name,
        patient_name=str(first.get("PatientName", "")), patient_id=str(first.get("PatientID", "")),
        study_date=str(first.get("StudyDate", "")), study_description=str(first.get("StudyDescription", "")),
        modalities=route.modalities.replace("\\", ", "), clinical_question=request.clinical_question,
        findings=report["findings"], impression=report["impression"],
        recommendations=report["recommendations"], key_image_sop_instance_uids=key_images,
        signed_by=report["signed_by"], signed_at=report["signed_at"], version=version,
        is_addendum=report["kind"] == "addendum", content_sha256=report["content_sha256"],
        earlier_versions=tuple(_earlier_section(row) for row in reversed(earlier)),
    )


def _earlier_section(row: ClinicReportVersion) -> EarlierVersion:
    report = row.report
    return EarlierVersion(
        version=row.version, is_addendum=row.is_addendum, findings=report["findings"],
        impression=report["impression"], recommendations=report["recommendations"],
        signed_by=report["signed_by"], signed_at=report["signed_at"],
    )


def _pdf_bytes(document: ReportDocument) -> bytes:
    try:
        return report_pdf_bytes(document)
    except (ValueError, TypeError) as error:
        raise DeliveryFailed(f"The report PDF could not be made: {error}") from error


def consult_delivery_failure_record(*, route_id: uuid.UUID | str, reason: str) -> str:
    """Record that delivering the consult's report failed for good: the reason on the consult (both
    sides see it in the API and on their pages), an audit row on each side, and an email to the
    hospital's coordinators and admins and to the clinic's requester and admins.

    Runs in the clinic's schema, like the delivery. A consult delivered meanwhile is left alone.
    """
    reason = reason.strip()[:500] or "The delivery failed."
    with transaction.atomic():
        route = ConsultRoute.objects.select_for_update().select_related("clinic", "hospital").filter(
            pk=route_id, clinic=current_tenant()).first()
        if route is None:
            return "gone"
        if route.state not in (ConsultState.FINALIZED, ConsultState.AMENDED):
            return f"not_deliverable_{route.state}"
        route.delivery_failure, route.delivery_failed_at = reason, timezone.now()
        route.save(update_fields=["delivery_failure", "delivery_failed_at", "updated_at"])
        detail = {"state": route.state, "version": route.report_version, "reason": reason}
        audit_record(action=AuditAction.CONSULT_DELIVERY_FAILED, actor=DELIVERY_ACTOR, object_type="consult",
                     object_id=route.pk, detail=detail)
        requested_by = ClinicConsult.objects.filter(route_id=route.pk).values_list("requested_by", flat=True).first()
        users_email_on_commit(
            route.clinic, subject=f"Consult report from {route.hospital.name} not delivered yet",
            body=f"The report of consult {route.pk} could not be delivered to your archive: {reason} "
                 f"{route.hospital.name} has been told and can send it again.",
            roles=_CLINIC_DELIVERY_ROLES, usernames=(requested_by,) if requested_by else (),
        )
    with transaction.atomic(), tenant_entered(route.hospital):
        audit_record(action=AuditAction.CONSULT_DELIVERY_FAILED, actor=DELIVERY_ACTOR, object_type="consult",
                     object_id=route.pk, detail=detail)
        users_email_on_commit(
            route.hospital, subject=f"Consult {route.pk}: report delivery to {route.clinic.name} failed",
            body=f"The signed report could not be delivered: {reason} Ask for a new delivery on the consult "
                 "once the cause is fixed.",
            roles=_HOSPITAL_DELIVERY_ROLES,
        )
    return "failed"
