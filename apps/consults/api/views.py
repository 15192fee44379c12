"""Consult API: one list endpoint (the clinic's requests or the hospital's worklist), details,
one endpoint per workflow action, the report PDF, and turnaround figures."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from apps.accounts.roles import ADMIN_ROLES, CLINIC_ROLES, HOSPITAL_ROLES, TENANT_ROLES
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.consults import ai_findings, attachments, selectors, services, webhooks
from apps.consults.api import serializers
from apps.consults.models import ConsultAttachment, WebhookEndpoint
from apps.consults.permissions import COORDINATOR_ROLES, READER_ROLES, ROLES_BY_ACTION, ConsultAction
from apps.core.errors import InvalidInput, NotFound
from apps.core.requests import query_datetime
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant, tenant_entered

A = ConsultAction


class ConsultListCreateView(GenericAPIView):
    allowed_roles_by_method = {"GET": TENANT_ROLES, "POST": ROLES_BY_ACTION[A.CREATE]}
    serializer_class = serializers.ConsultCreateSerializer

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        tenant = current_tenant()
        states = tuple(value for value in request.query_params.get("state", "").split(",") if value)
        if tenant.kind == "clinic":
            views = selectors.clinic_consults(clinic=tenant, states=states)
        else:
            parsed = query_datetime(request.query_params, "due_before")
            views = selectors.hospital_worklist(hospital=tenant, filters=selectors.WorklistFilter(
                states=states, priority=request.query_params.get("priority", ""),
                modality=request.query_params.get("modality", ""), clinic_slug=request.query_params.get("clinic", ""),
                due_before=parsed, claimed_by=request.query_params.get("claimed_by", ""),
            ))
        return Response({"results": [serializers.consult_json(view) for view in views]})

    @extend_schema(request=serializers.ConsultCreateSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        data = serializers.ConsultCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        route = services.consult_create(
            actor=Actor.from_request(request), requested_by=request.user.username,
            study_instance_uids=values["study_instance_uids"], hospital_slug=values["hospital"],
            clinical_question=values["clinical_question"], relevant_history=values["relevant_history"],
            priority=values["priority"], submit=values["submit"],
            idempotency_key=request.headers.get("Idempotency-Key", "")[:100],
        )
        view = selectors.consult_view(tenant=current_tenant(), route_id=route.pk)
        return Response(serializers.consult_json(view), status=status.HTTP_201_CREATED)


class ConsultDetailView(GenericAPIView):
    allowed_roles = TENANT_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request, route_id: uuid.UUID) -> Response:
        return Response(serializers.consult_json(selectors.consult_view(tenant=current_tenant(), route_id=route_id)))


Action = Callable[[Request, uuid.UUID, dict[str, Any]], Any]


def _user(request: Request) -> str:
    return str(request.user.username)


def _role(request: Request) -> str:
    return str(getattr(request.user, "role", ""))


# action → (input serializer or None, the service call); who may take it is ROLES_BY_ACTION's.
ACTIONS: dict[str, tuple[type[Serializer] | None, Action]] = {
    A.SUBMIT: (None, lambda r, pk, v: services.consult_submit(route_id=pk, actor=Actor.from_request(r))),
    A.CANCEL: (serializers.ReasonSerializer,
               lambda r, pk, v: services.consult_cancel(route_id=pk, actor=Actor.from_request(r), reason=v["reason"])),
    A.PROVIDE_INFO: (serializers.AnswerSerializer,
                     lambda r, pk, v: services.consult_info_provide(route_id=pk, actor=Actor.from_request(r),
                                                                    answer=v["answer"])),
    A.ACCEPT: (None, lambda r, pk, v: services.consult_accept(route_id=pk, actor=Actor.from_request(r))),
    A.REJECT: (serializers.ReasonSerializer,
               lambda r, pk, v: services.consult_reject(route_id=pk, actor=Actor.from_request(r), reason=v["reason"])),
    A.ASSIGN: (serializers.AssignSerializer,
               lambda r, pk, v: services.consult_assign(route_id=pk, actor=Actor.from_request(r),
                                                        radiologist=v["radiologist"])),
    A.RETURN_FOR_INFO: (serializers.QuestionSerializer,
                        lambda r, pk, v: services.consult_return_for_info(
                            route_id=pk, actor=Actor.from_request(r), question=v["question"], asked_by=_user(r),
                            asked_by_role=_role(r))),
    A.RETRY_DELIVERY: (None,
                       lambda r, pk, v: services.consult_delivery_retry(route_id=pk, actor=Actor.from_request(r))),
    A.CLAIM: (None,
              lambda r, pk, v: services.consult_claim(route_id=pk, actor=Actor.from_request(r), radiologist=_user(r))),
    A.REPORT: (serializers.ReportSerializer,
               lambda r, pk, v: services.report_draft_save(route_id=pk, actor=Actor.from_request(r),
                                                           radiologist=_user(r), **v)),
    A.SIGN: (None,
             lambda r, pk, v: services.report_sign(route_id=pk, actor=Actor.from_request(r), radiologist=_user(r))),
    A.AMEND: (serializers.ReportSerializer,
              lambda r, pk, v: services.report_amend(
                  route_id=pk, actor=Actor.from_request(r), radiologist=_user(r), findings=v["findings"],
                  impression=v["impression"], recommendations=v["recommendations"],
                  key_image_sop_instance_uids=v["key_image_sop_instance_uids"])),
}


class ConsultActionView(GenericAPIView):
    """POST /consults/{id}/{action}/: one workflow step (409 `invalid_transition` when the state forbids it)."""

    allowed_roles: frozenset[str] = frozenset(CLINIC_ROLES | HOSPITAL_ROLES)

    def get_permissions(self) -> Any:
        action = self.kwargs.get("action", "")
        self.allowed_roles = ROLES_BY_ACTION[A(action)] if action in ACTIONS else frozenset()
        return super().get_permissions()

    @extend_schema(request=dict, responses={200: dict})
    def post(self, request: Request, route_id: uuid.UUID, action: str) -> Response:
        if action not in ACTIONS:
            raise NotFound(f"No consult action {action!r}.", code="unknown_action")
        serializer_class, call = ACTIONS[action]
        values: dict[str, Any] = {}
        if serializer_class is not None:
            data = serializer_class(data=request.data)
            data.is_valid(raise_exception=True)
            values = dict(data.validated_data)
        call(request, route_id, values)
        return Response(serializers.consult_json(selectors.consult_view(tenant=current_tenant(), route_id=route_id)))


class ConsultReportPdfView(GenericAPIView):
    """GET /consults/{id}/report.pdf[?version=N]: a delivered version's PDF (the latest by default),
    for the clinic and for the hospital that wrote it. Every version keeps its own PDF, in the clinic's
    storage; an addendum's shows the addendum above the original. Each read is audited on both sides."""

    allowed_roles = frozenset(CLINIC_ROLES | COORDINATOR_ROLES | READER_ROLES)

    @extend_schema(responses={(200, "application/pdf"): bytes})
    def get(self, request: Request, route_id: uuid.UUID) -> HttpResponse:
        requested = request.query_params.get("version", "")
        if requested and not requested.isdigit():
            raise InvalidInput("version must be a report version number.", code="invalid_version")
        route = selectors.consult_view(tenant=current_tenant(), route_id=route_id).route
        delivered = selectors.delivered_report_version(route, int(requested) if requested else None)
        if delivered is None:
            raise NotFound("This consult has no such delivered report yet.", code="report_not_delivered")
        data = storage_for(route.clinic).get_bytes(delivered.pdf_key)
        actor, reader = Actor.from_request(request), current_tenant()
        for tenant in (route.clinic, route.hospital):
            with tenant_entered(tenant):
                audit_record(action=AuditAction.CONSULT_REPORT_READ, actor=actor, object_type="consult", object_id=route_id,
                             detail={"version": delivered.version, "by_tenant": reader.slug})
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="consult-report-v{delivered.version}.pdf"'
        response["Cache-Control"] = "private, no-store"
        return response


class TurnaroundView(GenericAPIView):
    allowed_roles = TENANT_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(selectors.turnaround(tenant=current_tenant()))


class WebhookCreateSerializer(Serializer):
    url = drf_serializers.URLField(max_length=500)
    description = drf_serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


def _endpoint_json(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": endpoint.pk, "url": endpoint.url, "description": endpoint.description,
                            "active": endpoint.active, "created_at": endpoint.created_at}
    if with_secret:
        body["secret"] = endpoint.secret  # shown once, at creation
    return body


class WebhookListCreateView(GenericAPIView):
    allowed_roles = ADMIN_ROLES
    serializer_class = WebhookCreateSerializer

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"results": [_endpoint_json(endpoint) for endpoint in WebhookEndpoint.objects.order_by("pk")]})

    @extend_schema(request=WebhookCreateSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        data = WebhookCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_create(actor=Actor.from_request(request), **data.validated_data)
        return Response(_endpoint_json(endpoint, with_secret=True), status=status.HTTP_201_CREATED)


class WebhookDetailView(GenericAPIView):
    allowed_roles = ADMIN_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None:
            raise NotFound("No such webhook.", code="webhook_not_found")
        deliveries = endpoint.deliveries.order_by("-created_at")[:100]
        return Response({**_endpoint_json(endpoint), "deliveries": [{
            "id": delivery.pk, "event": delivery.event, "status": delivery.status, "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
            "created_at": delivery.created_at, "delivered_at": delivery.delivered_at,
        } for delivery in deliveries]})

    @extend_schema(responses={204: None})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        webhooks.webhook_endpoint_delete(endpoint_id=endpoint_id, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _attachment_json(attachment: ConsultAttachment) -> dict[str, Any]:
    return {"id": attachment.pk, "kind": attachment.kind, "filename": attachment.filename,
            "size_bytes": attachment.size_bytes, "sha256": attachment.sha256, "uploaded_by": attachment.uploaded_by,
            "created_at": attachment.created_at}


class ConsultAttachmentListCreateView(GenericAPIView):
    """GET: the consult's documents (clinic, or the hospital while it may read the consult);
    POST (clinic, multipart/form-data: `file`, `kind`): add a PDF."""

    allowed_roles_by_method = {"GET": TENANT_ROLES, "POST": ROLES_BY_ACTION[A.ATTACH]}
    parser_classes = [MultiPartParser]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, route_id: uuid.UUID) -> Response:
        documents = attachments.consult_attachments(route_id=route_id, reader_role=_role(request))
        return Response({"results": [_attachment_json(item) for item in documents]})

    @extend_schema(request={"multipart/form-data": dict}, responses={201: dict})
    def post(self, request: Request, route_id: uuid.UUID) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("Send the document as the multipart field 'file'.", code="file_required")
        attachment = attachments.consult_attachment_add(
            route_id=route_id, actor=Actor.from_request(request), uploaded_by=request.user.username,
            kind=str(request.data.get("kind", "other")), filename=upload.name or "", stream=upload,
        )
        return Response(_attachment_json(attachment), status=status.HTTP_201_CREATED)


class ConsultAttachmentDetailView(GenericAPIView):
    allowed_roles = TENANT_ROLES

    @extend_schema(responses={(200, "application/pdf"): bytes})
    def get(self, request: Request, route_id: uuid.UUID, attachment_id: int) -> HttpResponse:
        attachment, data = attachments.consult_attachment_read(route_id=route_id, attachment_id=attachment_id,
                                                               actor=Actor.from_request(request),
                                                               reader_role=_role(request))
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{attachment.filename}"'
        response["Cache-Control"] = "private, no-store"
        return response


class ConsultAIFindingListView(GenericAPIView):
    """GET /consults/{id}/ai-findings/: the AI findings of the consult's studies with the hospital's verdicts."""

    allowed_roles = HOSPITAL_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request, route_id: uuid.UUID) -> Response:
        findings = ai_findings.consult_ai_findings(route_id=route_id)
        return Response({"results": [finding.as_json() for finding in findings]})


class ConsultAIFindingVerdictView(GenericAPIView):
    """POST /consults/{id}/ai-findings/{job}/{tracking_uid}/verdict/: accept, reject or edit one finding."""

    allowed_roles = ROLES_BY_ACTION[A.JUDGE_AI_FINDING]
    serializer_class = serializers.FindingVerdictSerializer

    @extend_schema(request=serializers.FindingVerdictSerializer, responses={200: dict})
    def post(self, request: Request, route_id: uuid.UUID, job_id: uuid.UUID, tracking_uid: str) -> Response:
        data = serializers.FindingVerdictSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        verdict = ai_findings.finding_verdict_record(
            route_id=route_id, job_id=job_id, tracking_uid=tracking_uid, actor=Actor.from_request(request),
            radiologist=_user(request), **data.validated_data)
        return Response(verdict.as_json())


class AIEngineAcceptanceView(GenericAPIView):
    """GET /consults/ai-findings/acceptance/: per engine, the hospital's accepted / rejected / edited counts."""

    allowed_roles = HOSPITAL_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"results": ai_findings.engine_acceptance()})
