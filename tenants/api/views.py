"""Operator API (public domain only): provision, suspend, activate and delete tenants; referral links."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.roles import Role
from apps.audit.services import Actor
from tenants import selectors, services
from tenants.api import serializers


class OperatorView(GenericAPIView):
    allowed_roles = {Role.OPERATOR}


class TenantListCreateView(OperatorView, ListAPIView):
    serializer_class = serializers.TenantSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.tenants_list()

    @extend_schema(request=serializers.TenantProvisionSerializer, responses={201: serializers.TenantProvisionResultSerializer})
    def post(self, request: Request) -> Response:
        data = serializers.TenantProvisionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.tenant_provision(
            slug=values["slug"], name=values["name"], kind=values["kind"], deployment=values.get("deployment"),
            domain=values.get("domain"), plan_code=values.get("plan"), admin_username=values["admin_username"],
            actor=Actor.from_request(request),
        )
        return Response(serializers.TenantProvisionResultSerializer(result).data, status=status.HTTP_201_CREATED)


class TenantDetailView(OperatorView):
    serializer_class = serializers.TenantSerializer

    def get(self, request: Request, slug: str) -> Response:
        tenant = selectors.tenant_by_slug(slug)
        if tenant is None:
            raise Http404
        return Response(serializers.TenantSerializer(tenant).data)

    def delete(self, request: Request, slug: str) -> Response:
        services.tenant_delete(slug=slug, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TenantSuspendView(OperatorView):
    serializer_class = serializers.SuspendSerializer

    @extend_schema(responses=serializers.TenantSerializer)
    def post(self, request: Request, slug: str) -> Response:
        data = serializers.SuspendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = services.tenant_suspend(slug=slug, reason=data.validated_data["reason"], actor=Actor.from_request(request))
        return Response(serializers.TenantSerializer(tenant).data)


class TenantActivateView(OperatorView):
    @extend_schema(request=None, responses=serializers.TenantSerializer)
    def post(self, request: Request, slug: str) -> Response:
        tenant = services.tenant_activate(slug=slug, actor=Actor.from_request(request))
        return Response(serializers.TenantSerializer(tenant).data)


class ReferralLinkListCreateView(OperatorView, ListAPIView):
    serializer_class = serializers.ReferralLinkSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.referral_links_list(
            clinic_slug=self.request.query_params.get("clinic"), hospital_slug=self.request.query_params.get("hospital")
        )

    @extend_schema(request=serializers.ReferralLinkCreateSerializer, responses={201: serializers.ReferralLinkSerializer})
    def post(self, request: Request) -> Response:
        data = serializers.ReferralLinkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = services.referral_link_create(
            clinic_slug=data.validated_data["clinic"], hospital_slug=data.validated_data["hospital"],
            sla_minutes=data.validated_data.get("sla_minutes"), actor=Actor.from_request(request),
        )
        return Response(serializers.ReferralLinkSerializer(link).data, status=status.HTTP_201_CREATED)


class ReferralLinkDeactivateView(OperatorView):
    @extend_schema(request=None, responses=serializers.ReferralLinkSerializer)
    def post(self, request: Request, link_id: int) -> Response:
        link = services.referral_link_deactivate(link_id=link_id, actor=Actor.from_request(request))
        return Response(serializers.ReferralLinkSerializer(link).data)
