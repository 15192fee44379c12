"""The reading page's AI findings panel (templates/consults/_ai_findings.html): the radiologist's
verdict on one finding, posted from the panel's form. Calls the same service as the API."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from apps.audit.services import Actor
from apps.consults import ai_findings
from apps.consults.permissions import ConsultAction, role_may
from apps.core.errors import DomainError


def _edited_diameter(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return -1.0  # refused by the service as an invalid diameter


@login_required
@require_POST
def consult_page_ai_finding_verdict(request: HttpRequest, route_id: uuid.UUID, job_id: uuid.UUID,
                                    tracking_uid: str) -> HttpResponse:
    if not role_may(str(getattr(request.user, "role", "")), ConsultAction.JUDGE_AI_FINDING):
        return HttpResponseForbidden("Only radiologists judge AI findings.")
    try:
        ai_findings.finding_verdict_record(
            route_id=route_id, job_id=job_id, tracking_uid=tracking_uid, actor=Actor.from_request(request),
            radiologist=request.user.get_username(), verdict=request.POST.get("verdict", ""),
            edited_long_axis_mm=_edited_diameter(request.POST.get("edited_long_axis_mm", "")),
            edited_location=request.POST.get("edited_location", ""), comment=request.POST.get("comment", ""),
        )
        messages.success(request, "Verdict recorded.")
    except DomainError as error:
        messages.error(request, str(error.detail))
    return redirect("consult-page", route_id=route_id)
