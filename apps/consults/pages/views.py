"""Server-rendered consult pages (session login): the clinic's list and new-consult form, the
hospital's worklist, and the reading page (report editor beside an image panel that scrolls the
granted series through the consult's own DICOMweb root, `/consults/{id}/dicomweb/…/rendered`).
Each view calls the same services as the API; who sees which button is apps/consults/permissions.py's."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.archive.models import Study
from apps.archive.selectors import instances_for_retrieval
from apps.audit.services import Actor
from apps.consult_routing.models import ConsultState
from apps.consults import ai_findings, attachments, selectors, services
from apps.consults.grants import consult_service_path, grant_is_live
from apps.consults.pages.forms import NewConsultForm, ReportForm, WorklistFilterForm
from apps.consults.permissions import ConsultAction, actions_for_role, role_may
from apps.consults.state_machine import InvalidTransition, next_state
from apps.core.errors import DomainError
from apps.dicom.modalities import NON_IMAGE_MODALITIES
from apps.dicom.window_presets import viewer_window_presets
from tenants.context import current_tenant, tenant_entered
from tenants.models import ReferralLink

# The page's action buttons (URL segment → the consult action it takes).
PAGE_ACTIONS = {"accept": ConsultAction.ACCEPT, "retry-delivery": ConsultAction.RETRY_DELIVERY,
                "claim": ConsultAction.CLAIM, "provide-info": ConsultAction.PROVIDE_INFO,
                "attachments": ConsultAction.ATTACH, "assign": ConsultAction.ASSIGN, "reject": ConsultAction.REJECT,
                "return-for-info": ConsultAction.RETURN_FOR_INFO}
# The actions the worklist offers on each row, in the order shown.
WORKLIST_ACTIONS = ("accept", "assign", "claim", "reject", "return-for-info")


def _role(request: HttpRequest) -> str:
    return str(getattr(request.user, "role", ""))


def _clinic_form(request: HttpRequest, data: Any = None) -> NewConsultForm:
    tenant = current_tenant()
    studies = [(study.study_instance_uid,
                f"{study.study_date or ''} {study.modalities_in_study and '/'.join(study.modalities_in_study) or ''} "
                f"{study.study_description} — {study.patient_name or study.patient_id}")
               for study in Study.objects.filter(deleted_at__isnull=True).order_by("-created_at")[:200]]
    hospitals = [(link.hospital.slug, link.hospital.name)
                 for link in ReferralLink.objects.select_related("hospital").filter(clinic=tenant, active=True)]
    return NewConsultForm(data, studies=studies, hospitals=hospitals)


@login_required
def consult_list(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant()
    if tenant.kind == "clinic":
        form = _clinic_form(request)
        if request.method == "POST":
            form = _clinic_form(request, request.POST)
            if not role_may(_role(request), ConsultAction.CREATE):
                return HttpResponseForbidden("Your role may not request consults.")
            if form.is_valid():
                try:
                    route = services.consult_create(
                        actor=Actor.from_request(request), requested_by=request.user.get_username(),
                        study_instance_uids=[form.cleaned_data["study_instance_uid"]],
                        hospital_slug=form.cleaned_data["hospital"], priority=form.cleaned_data["priority"],
                        clinical_question=form.cleaned_data["clinical_question"],
                        relevant_history=form.cleaned_data["relevant_history"], submit=True,
                    )
                    messages.success(request, "Consult sent.")
                    return redirect("consult-page", route_id=route.pk)
                except DomainError as error:
                    form.add_error(None, str(error.detail))
        views = selectors.clinic_consults(clinic=tenant)
        return render(request, "consults/clinic_list.html", {"consults": views, "form": form})
    clinics = [(link.clinic.slug, link.clinic.name)
               for link in ReferralLink.objects.select_related("clinic").filter(hospital=tenant).order_by("clinic__name")]
    filters = WorklistFilterForm(request.GET, clinics=clinics)
    views = selectors.hospital_worklist(hospital=tenant,
                                        filters=filters.worklist_filter(request.user.get_username()))
    role = _role(request)
    return render(request, "consults/worklist.html", {
        "rows": [(view, _offered_actions(view, role)) for view in views], "filters": filters,
        "readers": selectors.assignable_readers() if role_may(role, ConsultAction.ASSIGN) else [],
        "here": request.get_full_path(),
    })


def _offered_actions(view: selectors.ConsultView, role: str) -> list[str]:
    """The worklist actions this role may take (the permissions table) that the consult's state allows."""
    offered = []
    for segment in WORKLIST_ACTIONS:
        if not role_may(role, PAGE_ACTIONS[segment]):
            continue
        try:
            next_state(view.route.state, segment.replace("-", "_"))
        except InvalidTransition:
            continue
        offered.append(segment)
    return offered


def _granted_images(view: selectors.ConsultView) -> list[dict[str, Any]]:
    """Per series of the consult's studies: its instances in order, read in the clinic's schema."""
    series: dict[str, dict[str, Any]] = {}
    with tenant_entered(view.route.clinic):
        for uid in view.route.study_instance_uids:
            for instance in instances_for_retrieval(study_instance_uid=uid):
                if instance.modality in NON_IMAGE_MODALITIES:
                    continue
                entry = series.setdefault(instance.series_instance_uid, {
                    "study": instance.study_instance_uid, "series": instance.series_instance_uid,
                    "modality": instance.modality, "instances": []})
                entry["instances"].append(instance.sop_instance_uid)
    return list(series.values())


@login_required
def consult_page(request: HttpRequest, route_id: uuid.UUID) -> HttpResponse:
    tenant = current_tenant()
    try:
        view = selectors.consult_view(tenant=tenant, route_id=route_id)
    except DomainError as error:
        return render(request, "consults/error.html", {"detail": error.detail}, status=error.status)
    try:
        documents = attachments.consult_attachments(route_id=route_id,
                                                    reader_role=str(getattr(request.user, "role", "")))
    except DomainError:  # not (or no longer) readable by this reader: the page shows no documents
        documents = []
    if view.side == "clinic":
        return render(request, "consults/clinic_detail.html", {"consult": view, "attachments": documents})
    draft = view.reports[-1] if view.reports else None
    editable = draft is not None and not draft.is_signed
    form = ReportForm(initial={
        "findings": draft.findings, "impression": draft.impression, "recommendations": draft.recommendations,
        "key_images": " ".join(draft.key_image_sop_instance_uids),
    } if editable and draft else None)
    username = request.user.get_username()
    may = {action.name: True for action in actions_for_role(_role(request))}
    signed = view.signed_reports
    # The signer may add an addendum once the report is signed and the workflow allows it (not while one is on its way).
    may_amend = (bool(signed) and signed[-1].signed_by == username and "AMEND" in may
                 and view.route.state in (ConsultState.FINALIZED, ConsultState.DELIVERED))
    mine = view.route.claimed_by == username
    writes_report = mine and editable and view.route.state in (ConsultState.IN_READING, ConsultState.REPORTED)
    delivered = {item.version for item in selectors.delivered_report_versions(view.route)} if signed else set()
    can_read_images = grant_is_live(view.route)
    return render(request, "consults/reading.html", {
        "consult": view, "form": form, "attachments": documents, "draft": draft, "presets": viewer_window_presets(),
        "images": _granted_images(view) if can_read_images else [],
        "results": selectors.consult_result_series(view) if can_read_images else [],
        "identity": selectors.consult_identity(view),
        # Each signed version with whether the clinic has it delivered (then its PDF is linked).
        "signed_reports": [(report, report.version in delivered) for report in signed],
        "addendum_form": ReportForm(prefix="addendum") if may_amend else None,
        "dicomweb_root": consult_service_path(view.route.pk), "may": may,
        "mine": mine, "writes_report": writes_report,
        # "Mark key image" writes into the form that takes key images: the draft's, or the addendum's once signed.
        "takes_key_images": writes_report or may_amend,
        "ai_findings": ai_findings.consult_ai_findings(route_id=view.route.pk) if can_read_images else [],
    })


@login_required
@require_POST
def consult_page_action(request: HttpRequest, route_id: uuid.UUID, action: str) -> HttpResponse:
    """Accept, assign, reject, return for information or ask for a new delivery (coordinator), claim or return for
    information (radiologist) on the hospital's pages; answer the hospital's question or add a document on the
    clinic's. A `next` path under /consults/ (the worklist) is where the answer goes back to."""
    if action not in PAGE_ACTIONS or not role_may(_role(request), PAGE_ACTIONS[action]):
        return HttpResponseForbidden("Your role may not do this.")
    step = PAGE_ACTIONS[action]
    actor = Actor.from_request(request)
    username = request.user.get_username()
    try:
        if step is ConsultAction.ACCEPT:
            services.consult_accept(route_id=route_id, actor=actor)
        elif step is ConsultAction.ASSIGN:
            services.consult_assign(route_id=route_id, actor=actor, radiologist=request.POST.get("radiologist", ""))
            messages.success(request, _("Consult assigned."))
        elif step is ConsultAction.REJECT:
            services.consult_reject(route_id=route_id, actor=actor, reason=request.POST.get("reason", ""))
            messages.success(request, _("Consult rejected; the clinic sees the reason."))
        elif step is ConsultAction.RETURN_FOR_INFO:
            services.consult_return_for_info(route_id=route_id, actor=actor, question=request.POST.get("question", ""),
                                             asked_by=username, asked_by_role=_role(request))
            messages.success(request, _("Question sent to the clinic."))
        elif step is ConsultAction.RETRY_DELIVERY:
            services.consult_delivery_retry(route_id=route_id, actor=actor)
            messages.success(request, "A new delivery of the report is on its way.")
        elif step is ConsultAction.CLAIM:
            services.consult_claim(route_id=route_id, actor=actor, radiologist=username)
        elif step is ConsultAction.PROVIDE_INFO:
            services.consult_info_provide(route_id=route_id, actor=actor, answer=request.POST.get("answer", ""))
            messages.success(request, "Answer sent; the consult is submitted again.")
        else:
            upload = request.FILES.get("file")
            if upload is None:
                messages.error(request, "Choose a PDF file.")
            else:
                attachments.consult_attachment_add(route_id=route_id, actor=actor, uploaded_by=username,
                                                   kind=request.POST.get("kind", "other"), filename=upload.name or "",
                                                   stream=upload)
                messages.success(request, "Document added.")
    except DomainError as error:
        messages.error(request, str(error.detail))
    back = request.POST.get("next", "")
    if back.startswith("/consults/") and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)  # the worklist the form was posted from, its filters kept
    return redirect("consult-page", route_id=route_id)


@login_required
@require_POST
def consult_page_report(request: HttpRequest, route_id: uuid.UUID) -> HttpResponse:
    """Save the draft, or save and sign (the `sign` button)."""
    if not role_may(_role(request), ConsultAction.REPORT):
        return HttpResponseForbidden("Only radiologists write reports.")
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The report form is not valid.")
        return redirect("consult-page", route_id=route_id)
    actor, username = Actor.from_request(request), request.user.get_username()
    try:
        services.report_draft_save(
            route_id=route_id, actor=actor, radiologist=username, findings=form.cleaned_data["findings"],
            impression=form.cleaned_data["impression"], recommendations=form.cleaned_data["recommendations"],
            key_image_sop_instance_uids=form.key_image_uids(),
        )
        if "sign" in request.POST:
            services.report_sign(route_id=route_id, actor=actor, radiologist=username)
            messages.success(request, "Report signed; delivery to the clinic has started.")
        else:
            messages.success(request, "Draft saved.")
    except DomainError as error:
        messages.error(request, str(error.detail))
    return redirect("consult-page", route_id=route_id)


@login_required
@require_POST
def consult_page_addendum(request: HttpRequest, route_id: uuid.UUID) -> HttpResponse:
    """Sign an addendum to the signed report (a new version; the original is kept and shown first)."""
    if not role_may(_role(request), ConsultAction.AMEND):
        return HttpResponseForbidden("Your role may not amend reports.")
    form = ReportForm(request.POST, prefix="addendum")
    if not form.is_valid() or not (form.cleaned_data["findings"].strip() or form.cleaned_data["impression"].strip()):
        messages.error(request, "Write the addendum's findings or impression.")
        return redirect("consult-page", route_id=route_id)
    try:
        addendum = services.report_amend(
            route_id=route_id, actor=Actor.from_request(request), radiologist=request.user.get_username(),
            findings=form.cleaned_data["findings"], impression=form.cleaned_data["impression"],
            recommendations=form.cleaned_data["recommendations"], key_image_sop_instance_uids=form.key_image_uids(),
        )
        messages.success(request, f"Addendum signed (version {addendum.version}); delivery to the clinic has started.")
    except DomainError as error:
        messages.error(request, str(error.detail))
    return redirect("consult-page", route_id=route_id)
