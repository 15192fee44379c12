"""Accounts API: who am I, users of this tenant (admins), and my API tokens."""

from datetime import timedelta
from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import services
from apps.accounts.api import serializers
from apps.accounts.models import ApiToken, User
from apps.accounts.roles import ADMIN_ROLES, PLATFORM_ROLES, TENANT_ROLES
from apps.audit.services import Actor

EVERY_ROLE = TENANT_ROLES | PLATFORM_ROLES


class MeView(GenericAPIView):
    allowed_roles = EVERY_ROLE
    serializer_class = serializers.UserSerializer

    def get(self, request: Request) -> Response:
        tenant = request.tenant  # type: ignore[attr-defined]
        data = dict(serializers.UserSerializer(request.user).data)
        data["tenant"] = {"slug": getattr(tenant, "slug", "public"), "kind": getattr(tenant, "kind", "") or "platform"}
        return Response(data)


class UserListCreateView(ListAPIView):
    allowed_roles = ADMIN_ROLES | PLATFORM_ROLES
    serializer_class = serializers.UserSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return User.objects.order_by("username")

    @extend_schema(request=serializers.UserCreateSerializer, responses={201: serializers.UserSerializer})
    def post(self, request: Request) -> Response:
        data = serializers.UserCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(**data.validated_data, actor=Actor.from_request(request))
        return Response(serializers.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetailView(GenericAPIView):
    allowed_roles = ADMIN_ROLES | PLATFORM_ROLES
    serializer_class = serializers.UserSerializer

    def _user(self, user_id: int) -> User:
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise Http404
        return user

    def get(self, request: Request, user_id: int) -> Response:
        return Response(serializers.UserSerializer(self._user(user_id)).data)

    @extend_schema(request=serializers.UserUpdateSerializer)
    def patch(self, request: Request, user_id: int) -> Response:
        user = self._user(user_id)
        data = serializers.UserUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor = Actor.from_request(request)
        if "role" in data.validated_data:
            user = services.user_set_role(user=user, role=data.validated_data["role"], actor=actor)
        if data.validated_data.get("is_active") is False:
            user = services.user_deactivate(user=user, actor=actor)
        elif data.validated_data.get("is_active") is True:
            user = services.user_activate(user=user, actor=actor)
        return Response(serializers.UserSerializer(user).data)


class TokenListIssueView(ListAPIView):
    """A user's own tokens: list them, issue a new one (the secret is shown once)."""

    allowed_roles = EVERY_ROLE
    serializer_class = serializers.ApiTokenSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=serializers.TokenIssueSerializer, responses={201: serializers.IssuedTokenSerializer})
    def post(self, request: Request) -> Response:
        data = serializers.TokenIssueSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        days = data.validated_data.get("lifetime_days")
        issued = services.token_issue(
            user=request.user, name=data.validated_data["name"],  # type: ignore[arg-type]
            lifetime=timedelta(days=days) if days else None, actor=Actor.from_request(request),
            from_session=isinstance(request.successful_authenticator, SessionAuthentication),
        )
        body = {"token": issued.secret, "detail": serializers.ApiTokenSerializer(issued.token).data}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevokeView(GenericAPIView):
    allowed_roles = EVERY_ROLE
    serializer_class = serializers.ApiTokenSerializer

    def delete(self, request: Request, token_id: int) -> Response:
        # Users revoke their own tokens; admins may revoke any token of their tenant.
        tokens = ApiToken.objects.all()
        user: Any = request.user
        if user.role not in ADMIN_ROLES:
            tokens = tokens.filter(user=user)
        if not tokens.filter(pk=token_id).exists():
            raise Http404
        services.token_revoke(token_id=token_id, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
