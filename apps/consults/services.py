"""Consult use cases: one function per action, each owning its transaction and audit rows.

The shared `ConsultRoute` (public schema) is locked with SELECT … FOR UPDATE by every action, so
two actions on one consult run one after the other (two radiologists claiming at once: one wins,
the other gets `invalid_transition`). Actions that touch the other side's records switch schema
inside the same transaction (one database): both sides change together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.archive.models import Study
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record, audited_move
from apps.consult_routing.models import PRIORITY_RANK, ConsultRoute, ConsultState, Priority
from apps.consults.grants import grant_grace
from apps.consults.models import (
    AIFindingVerdict,
    ClinicConsult,
    ClinicReportVersion,
    HospitalConsult,
    ReportKind,
    ReportVersion,
)
from apps.consults.notifications import users_email_on_commit
from apps.consults.permissions import COORDINATOR_ROLES
from apps.consults.state_machine import (
    CLOSED_STATES,
    CONSULT_AUDIT_ACTIONS,
    CONSULT_WORKFLOW,
    OPEN_STATES,
    InvalidTransition,
    next_state,
)
from apps.consults.study_facts import study_body_parts, study_patient_age
from apps.consults.webhooks import webhooks_emit
from apps.core.errors import Forbidden, InvalidInput, NotFound, StudyNotFound
from tenants.context import current_tenant, tenant_entered
from tenants.models import ReferralLink, TenantKind, TenantStatus
from tenants.queues import WorkKind, enqueue_on_commit


class ConsultNotFound(NotFound):
    code = "consult_not_found"


class HospitalNotInNetwork(InvalidInput):
    code = "hospital_not_in_network"
    status = 422


class NotYourConsult(Forbidden):
    code = "not_your_consult"


class ReportLocked(InvalidInput):
    """A signed report version is frozen: write an addendum instead."""

    code = "report_signed"
    status = 409


# --- helpers ------------------------------------------------------------------------------------


def _sla_minutes(link: ReferralLink | None, priority: str) -> int:
    configured = (link.sla_minutes if link else {}) or {}
    return int(configured.get(priority) or settings.CONSULT_SLA_MINUTES[priority])


def _locked_route(route_id: uuid.UUID | str, *, side: str) -> ConsultRoute:
    """The consult, locked, if the current tenant is its `side` ('clinic' or 'hospital'); else 404."""
    tenant = current_tenant()
    filters: dict[str, Any] = {"pk": route_id, side: tenant}
    try:
        return ConsultRoute.objects.select_for_update().select_related("clinic", "hospital").get(**filters)
    except (ConsultRoute.DoesNotExist, ValueError, InvalidInput):
        raise ConsultNotFound("No such consult for this tenant.") from None


def _move(route: ConsultRoute, action: str, *, actor: Actor, detail: dict[str, Any] | None = None,
          also_audit_other_side: bool = False, **fields: Any) -> None:
    """Apply `action` to `route` (with the other `fields` it changes) through CONSULT_WORKFLOW, audit
    it here (and on the other side when asked)."""
    before = route.state
    target = next_state(before, action)
    if target in CLOSED_STATES:
        closed_at = timezone.now()
        fields.update(closed_at=closed_at, grant_expires_at=closed_at + grant_grace())
    payload = {"from": before, "to": target, **(detail or {})}
    audit_action = CONSULT_AUDIT_ACTIONS[action]
    audited_move(route, CONSULT_WORKFLOW, action, actor=actor, action=audit_action, object_type="consult",
                 detail=payload, **fields)
    here = current_tenant()
    other = route.hospital if here.pk == route.clinic_id else route.clinic
    if also_audit_other_side:
        with tenant_entered(other):
            audit_record(action=audit_action, actor=actor, object_type="consult", object_id=route.pk,
                         detail={**payload, "by_tenant": here.slug})
    consult_event_emit(route, action=action, previous_state=before)


def consult_event_emit(route: ConsultRoute, *, action: str, previous_state: str) -> None:
    """Tell both sides' webhooks (the hospital only once the consult has been submitted)."""
    event = {"consult_id": str(route.pk), "action": action, "state": route.state, "previous_state": previous_state,
             "priority": route.priority, "clinic": route.clinic.slug, "hospital": route.hospital.slug,
             "occurred_at": timezone.now().isoformat()}
    for tenant in (route.clinic, route.hospital):
        if tenant.pk == route.hospital_id and route.submitted_at is None:
            continue
        with tenant_entered(tenant):
            webhooks_emit(event=f"consult.{route.state}", payload=event)


def content_sha256(version: ReportVersion) -> str:
    canonical = json.dumps({
        "findings": version.findings, "impression": version.impression,
        "recommendations": version.recommendations, "key_images": list(version.key_image_sop_instance_uids),
        "modality_template": version.modality_template, "version": version.version, "kind": version.kind,
    }, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- clinic side --------------------------------------------------------------------------------


def consult_create(
    *, actor: Actor, requested_by: str, study_instance_uids: list[str], hospital_slug: str,
    clinical_question: str, relevant_history: str = "", priority: str = Priority.ROUTINE,
    idempotency_key: str = "", submit: bool = False,
) -> ConsultRoute:
    """A clinic asks a hospital of its referral network to read studies of its own archive."""
    clinic = current_tenant()
    if clinic.kind != TenantKind.CLINIC:
        raise Forbidden("Only a clinic sends consult requests.", code="not_a_clinic")
    if priority not in Priority.values:
        raise InvalidInput(f"priority must be one of {', '.join(Priority.values)}.", code="invalid_priority")
    if not clinical_question.strip():
        raise InvalidInput("A consult needs a clinical question.", code="clinical_question_required")
    uids = list(dict.fromkeys(uid.strip() for uid in study_instance_uids if uid.strip()))
    if not uids:
        raise InvalidInput("Name at least one study.", code="study_required")
    if idempotency_key:
        earlier = ConsultRoute.objects.filter(clinic=clinic, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return earlier
    link = (ReferralLink.objects.select_related("hospital")
            .filter(clinic=clinic, hospital__slug=hospital_slug, active=True,
                    hospital__status=TenantStatus.ACTIVE).first())
    if link is None:
        raise HospitalNotInNetwork(f"{hospital_slug!r} is not a hospital in this clinic's referral network.")
    studies = list(Study.objects.filter(study_instance_uid__in=uids, deleted_at__isnull=True))
    missing = sorted(set(uids) - {study.study_instance_uid for study in studies})
    if missing:
        raise StudyNotFound(f"Not in this clinic's archive: {', '.join(missing)}")
    modalities = sorted({modality for study in studies for modality in study.modalities_in_study})
    try:
        with transaction.atomic():
            route = ConsultRoute.objects.create(
                clinic=clinic, hospital=link.hospital, study_instance_uids=uids, modalities="\\".join(modalities),
                priority=priority, priority_rank=PRIORITY_RANK[Priority(priority)], idempotency_key=idempotency_key,
            )
            ClinicConsult.objects.create(
                route_id=route.pk, hospital_slug=link.hospital.slug, requested_by=requested_by,
                clinical_question=clinical_question, relevant_history=relevant_history,
            )
            audit_record(action=AuditAction.CONSULT_CREATE, actor=actor, object_type="consult", object_id=route.pk,
                         detail={"hospital": link.hospital.slug, "studies": uids, "priority": priority})
    except IntegrityError:
        # The same Idempotency-Key sent twice at once: the other request created it.
        return ConsultRoute.objects.get(clinic=clinic, idempotency_key=idempotency_key)
    if submit:
        return consult_submit(route_id=route.pk, actor=actor)
    return route


@transaction.atomic
def consult_submit(*, route_id: uuid.UUID | str, actor: Actor) -> ConsultRoute:
    route = _locked_route(route_id, side="clinic")
    resubmission = route.state == ConsultState.RETURNED_FOR_INFO
    link = ReferralLink.objects.filter(clinic=route.clinic, hospital=route.hospital).first()
    now = timezone.now()
    due: dict[str, Any] = {} if resubmission else {"sla_due_at": now + timedelta(minutes=_sla_minutes(link, route.priority))}
    _move(route, "submit", actor=actor, also_audit_other_side=True, submitted_at=now, **due)
    request = ClinicConsult.objects.get(route_id=route.pk)
    studies = Study.objects.filter(study_instance_uid__in=route.study_instance_uids, deleted_at__isnull=True)
    summary = {
        "studies": [{
            "study_instance_uid": study.study_instance_uid, "study_date": str(study.study_date or ""),
            "study_description": study.study_description, "modalities": list(study.modalities_in_study),
            "number_of_instances": study.number_of_instances, "patient_sex": study.patient_sex,
            "patient_birth_date": str(study.patient_birth_date or ""), "patient_name": study.patient_name,
            "patient_id": study.patient_id, "patient_age": study_patient_age(study),
            "body_parts": study_body_parts(study),
        } for study in studies],
    }
    with tenant_entered(route.hospital):
        HospitalConsult.objects.update_or_create(route_id=route.pk, defaults={
            "clinic_slug": route.clinic.slug, "clinic_name": route.clinic.name,
            "clinical_question": request.clinical_question, "relevant_history": request.relevant_history,
            "study_summary": summary,
        })
    users_email_on_commit(route.hospital, roles=COORDINATOR_ROLES,
                          subject=f"New {route.priority} consult from {route.clinic.name}",
                          body=f"Consult {route.pk} waits in the worklist.")
    return route


@transaction.atomic
def consult_cancel(*, route_id: uuid.UUID | str, actor: Actor, reason: str = "") -> ConsultRoute:
    route = _locked_route(route_id, side="clinic")
    _move(route, "cancel", actor=actor, detail={"reason": reason}, also_audit_other_side=True)
    return route


@transaction.atomic
def consult_info_provide(*, route_id: uuid.UUID | str, actor: Actor, answer: str) -> ConsultRoute:
    """The clinic answers the hospital's question and submits again."""
    if not answer.strip():
        raise InvalidInput("Write the information the hospital asked for.", code="answer_required")
    route = _locked_route(route_id, side="clinic")
    request = ClinicConsult.objects.get(route_id=route.pk)
    request.relevant_history = f"{request.relevant_history}\n\n[{timezone.now():%Y-%m-%d %H:%M}] {answer}".strip()
    request.save(update_fields=["relevant_history"])
    return consult_submit(route_id=route.pk, actor=actor)


# --- hospital side ------------------------------------------------------------------------------


@transaction.atomic
def consult_accept(*, route_id: uuid.UUID | str, actor: Actor) -> ConsultRoute:
    route = _locked_route(route_id, side="hospital")
    _move(route, "accept", actor=actor, also_audit_other_side=True, accepted_at=timezone.now())
    return route


@transaction.atomic
def consult_reject(*, route_id: uuid.UUID | str, actor: Actor, reason: str) -> ConsultRoute:
    if not reason.strip():
        raise InvalidInput("Say why the consult is rejected.", code="reason_required")
    route = _locked_route(route_id, side="hospital")
    _move(route, "reject", actor=actor, detail={"reason": reason}, also_audit_other_side=True)
    HospitalConsult.objects.filter(route_id=route.pk).update(reject_reason=reason)
    with tenant_entered(route.clinic):
        ClinicConsult.objects.filter(route_id=route.pk).update(reject_reason=reason)
    return route


@transaction.atomic
def consult_return_for_info(
    *, route_id: uuid.UUID | str, actor: Actor, question: str, asked_by: str, asked_by_role: str,
) -> ConsultRoute:
    """The hospital asks the clinic for more information. A coordinator may ask at any point the
    workflow allows; a radiologist only about the consult they claimed (else someone could pull
    a consult away from the radiologist who is reading it)."""
    if not question.strip():
        raise InvalidInput("Ask the clinic a question.", code="question_required")
    route = _locked_route(route_id, side="hospital")
    next_state(route.state, "return_for_info")  # a state that forbids it is a conflict, whoever asks
    claiming_radiologist = asked_by_role == Role.RADIOLOGIST and route.claimed_by == asked_by
    if asked_by_role not in COORDINATOR_ROLES and not claiming_radiologist:
        raise NotYourConsult("Only the radiologist who claimed this consult, or a coordinator, may return it "
                             "for information.")
    _move(route, "return_for_info", actor=actor, detail={"question": question}, also_audit_other_side=True,
          claimed_by="")
    HospitalConsult.objects.filter(route_id=route.pk).update(return_question=question)
    with tenant_entered(route.clinic):
        ClinicConsult.objects.filter(route_id=route.pk).update(hospital_question=question)
    return route


@transaction.atomic
def consult_assign(*, route_id: uuid.UUID | str, actor: Actor, radiologist: str) -> ConsultRoute:
    if not User.objects.filter(username=radiologist, role=Role.RADIOLOGIST, is_active=True).exists():
        raise InvalidInput(f"No active radiologist named {radiologist!r}.", code="unknown_radiologist")
    route = _locked_route(route_id, side="hospital")
    _move(route, "assign", actor=actor, detail={"radiologist": radiologist}, assigned_to=radiologist)
    return route


@transaction.atomic
def consult_claim(*, route_id: uuid.UUID | str, actor: Actor, radiologist: str) -> ConsultRoute:
    route = _locked_route(route_id, side="hospital")
    if route.assigned_to and route.assigned_to != radiologist and route.state == ConsultState.ASSIGNED:
        raise NotYourConsult(f"This consult is assigned to {route.assigned_to}.")
    _move(route, "claim", actor=actor, detail={"radiologist": radiologist}, also_audit_other_side=True,
          claimed_by=radiologist)
    if not ReportVersion.objects.filter(route_id=route.pk).exists():
        ReportVersion.objects.create(route_id=route.pk, version=1, author=radiologist,
                                     modality_template=(route.modalities.split("\\") or ["general"])[0] or "general")
    return route


def _reader_route(route_id: uuid.UUID | str, radiologist: str, action: str) -> ConsultRoute:
    route = _locked_route(route_id, side="hospital")
    next_state(route.state, action)  # a state that forbids the action is a conflict, whoever asks
    if route.claimed_by != radiologist:
        raise NotYourConsult("Only the radiologist who claimed this consult may write its report.")
    return route


def _draft_of(route: ConsultRoute) -> ReportVersion:
    draft = ReportVersion.objects.select_for_update().filter(route_id=route.pk).order_by("-version").first()
    if draft is None or draft.is_signed:
        raise ReportLocked("The report is signed; write an addendum instead.")
    return draft


@transaction.atomic
def report_draft_save(
    *, route_id: uuid.UUID | str, actor: Actor, radiologist: str, findings: str, impression: str,
    recommendations: str = "", key_image_sop_instance_uids: list[str] | None = None,
    modality_template: str | None = None, preliminary: bool = False,
) -> ReportVersion:
    action = "report_preliminary" if preliminary else "save_draft"
    route = _reader_route(route_id, radiologist, action)
    draft = _draft_of(route)
    key_images = list(dict.fromkeys(key_image_sop_instance_uids or []))
    draft.findings, draft.impression, draft.recommendations = findings, impression, recommendations
    draft.key_image_sop_instance_uids = key_images
    draft.kind = ReportKind.PRELIMINARY if preliminary else ReportKind.DRAFT
    if modality_template:
        draft.modality_template = modality_template
    draft.save()
    _move(route, action, actor=actor, detail={"version": draft.version})
    return draft


def _report_snapshot(route: ConsultRoute, version: ReportVersion) -> dict[str, Any]:
    return {
        "version": version.version, "kind": version.kind, "modality_template": version.modality_template,
        "findings": version.findings, "impression": version.impression,
        "recommendations": version.recommendations,
        "key_image_sop_instance_uids": list(version.key_image_sop_instance_uids),
        "signed_by": version.signed_by, "signed_at": version.signed_at.isoformat() if version.signed_at else None,
        "content_sha256": version.content_sha256, "hospital_name": route.hospital.name,
        "hospital_slug": route.hospital.slug,
    }


def _sign(route: ConsultRoute, version: ReportVersion, radiologist: str) -> None:
    if not (version.findings.strip() or version.impression.strip()):
        raise InvalidInput("A report needs findings or an impression before it is signed.", code="report_empty")
    version.signed_by, version.signed_at = radiologist, timezone.now()
    version.content_sha256 = content_sha256(version)
    # The verdicts on the AI findings as they stand now stay with this version (docs/ai.md).
    version.ai_finding_verdicts = [verdict.as_json() for verdict in AIFindingVerdict.objects.filter(
        route_id=route.pk).order_by("job_id", "finding_number")]
    version.save()
    # Not a state change: the version the delivery will send.
    route.report_version = version.version
    ConsultRoute.objects.filter(pk=route.pk).update(report_version=version.version)
    snapshot = _report_snapshot(route, version)
    with tenant_entered(route.clinic):
        ClinicConsult.objects.filter(route_id=route.pk).update(report=snapshot, report_version=version.version)
        # Every signed version is kept beside the latest: an addendum is shown after the original, never instead.
        ClinicReportVersion.objects.update_or_create(route_id=route.pk, version=version.version,
                                                     defaults={"kind": version.kind, "report": snapshot})
        audit_record(action=AuditAction.CONSULT_REPORT_RECEIVED, actor=Actor.system("consults"), object_type="consult",
                     object_id=route.pk, detail={"version": version.version, "sha256": version.content_sha256})
    enqueue_on_commit("apps.consults.tasks.consult_deliver_task", tenant=route.clinic, work=WorkKind.WORKFLOW, args=(str(route.pk),))


@transaction.atomic(durable=True)
def report_sign(*, route_id: uuid.UUID | str, actor: Actor, radiologist: str) -> ReportVersion:
    """Freeze the draft as the final report (who, when, content hash) and start delivery.

    A top-level action (a durable transaction): the signature and the delivery it queues commit
    together or not at all, never with an outer transaction that could still roll back."""
    route = _reader_route(route_id, radiologist, "sign")
    version = _draft_of(route)
    version.kind = ReportKind.FINAL
    _move(route, "sign", actor=actor, detail={"version": version.version}, also_audit_other_side=True,
          finalized_at=timezone.now())
    _sign(route, version, radiologist)
    return version


@transaction.atomic
def consult_delivery_retry(*, route_id: uuid.UUID | str, actor: Actor) -> ConsultRoute:
    """Ask for a new delivery of the signed report (by the hospital's coordinator or admin), e.g.
    after a failed one was recorded and its cause fixed. The failure is cleared, both sides audit
    the request, and the delivery task is queued on the clinic's workflow queue."""
    route = _locked_route(route_id, side="hospital")
    if route.state not in (ConsultState.FINALIZED, ConsultState.AMENDED):
        raise InvalidTransition(f"A consult that is {route.state} has no report waiting for delivery.")
    previous_failure = route.delivery_failure
    route.delivery_failure, route.delivery_failed_at = "", None
    route.save(update_fields=["delivery_failure", "delivery_failed_at", "updated_at"])
    detail = {"state": route.state, "version": route.report_version, "previous_failure": previous_failure}
    audit_record(action=AuditAction.CONSULT_DELIVERY_RETRY, actor=actor, object_type="consult", object_id=route.pk,
                 detail=detail)
    with tenant_entered(route.clinic):
        audit_record(action=AuditAction.CONSULT_DELIVERY_RETRY, actor=actor, object_type="consult", object_id=route.pk,
                     detail={**detail, "by_tenant": route.hospital.slug})
    enqueue_on_commit("apps.consults.tasks.consult_deliver_task", tenant=route.clinic, work=WorkKind.WORKFLOW, args=(str(route.pk),))
    return route


@transaction.atomic
def report_amend(
    *, route_id: uuid.UUID | str, actor: Actor, radiologist: str, findings: str, impression: str,
    recommendations: str = "", key_image_sop_instance_uids: list[str] | None = None,
) -> ReportVersion:
    """An addendum after finalization: a new signed version; every earlier version is kept."""
    route = _locked_route(route_id, side="hospital")
    latest = ReportVersion.objects.filter(route_id=route.pk).order_by("-version").first()
    if latest is None or not latest.is_signed:
        raise ReportLocked("Only a signed report can be amended.", code="report_not_signed")
    if latest.signed_by != radiologist:
        raise NotYourConsult("Only the radiologist who signed the report may amend it.")
    _move(route, "amend", actor=actor, detail={"version": latest.version + 1}, also_audit_other_side=True)
    addendum = ReportVersion.objects.create(
        route_id=route.pk, version=latest.version + 1, kind=ReportKind.ADDENDUM,
        modality_template=latest.modality_template, findings=findings, impression=impression,
        recommendations=recommendations, key_image_sop_instance_uids=list(key_image_sop_instance_uids or []),
        author=radiologist,
    )
    _sign(route, addendum, radiologist)
    return addendum


# --- SLA ----------------------------------------------------------------------------------------


def consults_escalate_overdue() -> int:
    """Mark every open consult past its SLA due time as escalated (once), tell the hospital's
    coordinators, and audit it on both sides. Run by beat in the public schema."""
    now = timezone.now()
    escalated = 0
    overdue = (ConsultRoute.objects.filter(state__in=OPEN_STATES, sla_due_at__lt=now, escalated_at__isnull=True)
               .exclude(state=ConsultState.RETURNED_FOR_INFO).values_list("pk", flat=True))
    for route_id in list(overdue):
        with transaction.atomic():
            route = (ConsultRoute.objects.select_for_update(skip_locked=True).select_related("clinic", "hospital")
                     .filter(pk=route_id, escalated_at__isnull=True).first())
            if route is None:
                continue
            route.escalated_at = now
            route.save(update_fields=["escalated_at", "updated_at"])
            detail = {"state": route.state, "priority": route.priority, "sla_due_at": str(route.sla_due_at)}
            for tenant in (route.hospital, route.clinic):
                with tenant_entered(tenant):
                    audit_record(action=AuditAction.CONSULT_ESCALATE, actor=Actor.system("sla"), object_type="consult",
                                 object_id=route.pk, detail=detail)
            users_email_on_commit(route.hospital, roles=frozenset({Role.CONSULT_COORDINATOR, Role.HOSPITAL_ADMIN}),
                                  subject=f"Overdue {route.priority} consult from {route.clinic.name}",
                                  body=f"Consult {route.pk} was due at {route.sla_due_at:%Y-%m-%d %H:%M} UTC.")
            escalated += 1
    return escalated
