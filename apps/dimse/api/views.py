"""DIMSE peers API for tenant admins: list, register, remove (docs/dimse.md)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.roles import ADMIN_ROLES
from apps.audit.services import Actor
from apps.dimse import selectors, services
from apps.dimse.models import DimsePeer
from tenants.context import current_tenant


class PeerCreateSerializer(serializers.Serializer):
    ae_title = serializers.CharField(max_length=64)
    host = serializers.CharField(max_length=64)
    port = serializers.IntegerField(required=False, allow_null=True, default=None)


def peer_json(peer: DimsePeer) -> dict[str, Any]:
    return {"id": peer.pk, "ae_title": peer.ae_title, "host": peer.host, "port": peer.port,
            "created_at": peer.created_at}


class PeerListCreateView(GenericAPIView):
    allowed_roles = ADMIN_ROLES
    serializer_class = PeerCreateSerializer

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        tenant = current_tenant()
        return Response({"called_ae_title": tenant.dimse_ae_title,
                         "results": [peer_json(peer) for peer in selectors.peers_of(tenant=tenant)]})

    @extend_schema(request=PeerCreateSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        data = PeerCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        peer = services.dimse_peer_add(tenant=current_tenant(), ae_title=values["ae_title"], host=values["host"],
                                       port=values["port"], actor=Actor.from_request(request))
        return Response(peer_json(peer), status=status.HTTP_201_CREATED)


class PeerDetailView(GenericAPIView):
    allowed_roles = ADMIN_ROLES

    @extend_schema(responses={204: None})
    def delete(self, request: Request, peer_id: int) -> Response:
        services.dimse_peer_remove(tenant=current_tenant(), peer_id=peer_id, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
