"""AI API: engines with this tenant's enablement, routing rules, and jobs (start, list, detail, cancel)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.authentication import bearer_secret
from apps.accounts.roles import ADMIN_ROLES, TENANT_ROLES, Role
from apps.ai import selectors, services
from apps.ai.api import serializers
from apps.ai.api.parsers import CallbackJSONParser
from apps.ai.external import CallbackRefused, callback_token_matches, external_job_callback
from apps.ai.models import AIJob, RoutingRule
from apps.audit.services import Actor

# Who may start and cancel jobs: the people who acquire or read studies.
JOB_STARTER_ROLES = ADMIN_ROLES | {Role.TECHNOLOGIST, Role.RADIOLOGIST, Role.CONSULT_COORDINATOR}


class EngineListView(GenericAPIView):
    allowed_roles = TENANT_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response({"results": [engine.as_json() for engine in selectors.engines_registered()]})


class EngineDetailView(GenericAPIView):
    allowed_roles_by_method = {"GET": TENANT_ROLES, "PATCH": ADMIN_ROLES}
    serializer_class = serializers.EngineUpdateSerializer

    def get(self, request: Request, engine_name: str) -> Response:
        engine = selectors.engine_registered(engine_name)
        if engine is None:
            raise services.EngineNotFound(f"No engine named {engine_name!r}.")
        return Response(engine.as_json())

    def patch(self, request: Request, engine_name: str) -> Response:
        data = serializers.EngineUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        engine = services.engine_setting_update(
            engine_name=engine_name, actor=Actor.from_request(request),
            enabled=data.validated_data.get("enabled"), timeout_seconds=data.validated_data.get("timeout_seconds"),
        )
        return Response(engine.as_json())


class RoutingRuleListCreateView(ListAPIView):
    allowed_roles_by_method = {"GET": TENANT_ROLES, "POST": ADMIN_ROLES}
    serializer_class = serializers.RoutingRuleSerializer

    def get_queryset(self) -> QuerySet[RoutingRule]:
        return selectors.routing_rules()

    def post(self, request: Request) -> Response:
        data = serializers.RoutingRuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.routing_rule_create(actor=Actor.from_request(request), created_by=request.user,
                                            **data.validated_data)
        return Response(serializers.RoutingRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RoutingRuleDetailView(GenericAPIView):
    allowed_roles_by_method = {"DELETE": ADMIN_ROLES}
    serializer_class = serializers.RoutingRuleSerializer

    def delete(self, request: Request, rule_id: int) -> Response:
        services.routing_rule_delete(rule_id=rule_id, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class JobListStartView(ListAPIView):
    allowed_roles_by_method = {"GET": TENANT_ROLES, "POST": JOB_STARTER_ROLES}
    serializer_class = serializers.AIJobSerializer

    def get_queryset(self) -> QuerySet[AIJob]:
        return selectors.jobs_list(study_instance_uid=self.request.query_params.get("study_instance_uid"),
                                   state=self.request.query_params.get("state"))

    @extend_schema(
        request=serializers.AIJobStartSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={201: serializers.AIJobSerializer, 200: serializers.AIJobSerializer},
    )
    def post(self, request: Request) -> Response:
        data = serializers.AIJobStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        started = services.job_start(
            engine_name=data.validated_data["engine_name"],
            study_instance_uid=data.validated_data["study_instance_uid"],
            forced=data.validated_data["forced"], user=request.user, actor=Actor.from_request(request),
            idempotency_key=request.headers.get("Idempotency-Key", "")[:200],
        )
        body: dict[str, Any] = dict(serializers.AIJobSerializer(started.job).data)
        body["reused"] = started.reused
        return Response(body, status=status.HTTP_200_OK if started.reused else status.HTTP_201_CREATED)


class JobDetailView(GenericAPIView):
    allowed_roles = TENANT_ROLES
    serializer_class = serializers.AIJobSerializer

    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        job = selectors.job_get(job_id)
        if job is None:
            raise Http404
        return Response(serializers.AIJobSerializer(job).data)


class JobCancelView(GenericAPIView):
    allowed_roles = JOB_STARTER_ROLES
    serializer_class = serializers.AIJobSerializer

    @extend_schema(request=None)
    def post(self, request: Request, job_id: uuid.UUID) -> Response:
        job = services.job_cancel(job_id=job_id, actor=Actor.from_request(request))
        return Response(serializers.AIJobSerializer(job).data)


class JobCallbackView(GenericAPIView):
    """An external engine reports the end of its job, authenticated by the job's call-back token
    (``Authorization: Bearer <callback_token>``), not by a user token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [CallbackJSONParser]
    serializer_class = serializers.ExternalCallbackSerializer

    def post(self, request: Request, job_id: uuid.UUID) -> Response:
        secret = bearer_secret(request.META.get("HTTP_AUTHORIZATION", ""))
        if not secret:
            raise CallbackRefused("Send 'Authorization: Bearer <callback_token>'.")
        if not callback_token_matches(job_id=job_id, callback_token=secret):
            raise CallbackRefused("Unknown job or wrong call-back token.")
        data = serializers.ExternalCallbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = external_job_callback(job_id=job_id, callback_token=secret, **data.validated_data)
        return Response(serializers.AIJobSerializer(job).data)
