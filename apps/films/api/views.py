"""Clinic API for cloud films: request a film, see it, issue links (token, code, QR), read a link's
access history (clinic admins only: it holds patients' addresses), revoke it."""

from __future__ import annotations

from typing import Any

import segno
from django.db.models import QuerySet
from django.http.request import split_domain_port
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.roles import CLINIC_ROLES, TENANT_ROLES, Role
from apps.audit.models import AuditEvent
from apps.audit.services import Actor
from apps.dicom.film_sheet import LAYOUTS, Layout
from apps.film_links.models import FilmLink
from apps.films import services
from apps.films.models import Film
from tenants.context import current_tenant

FILM_MAKER_ROLES = CLINIC_ROLES


class FilmRequestSerializer(serializers.Serializer):
    study_instance_uid = serializers.CharField(max_length=64)
    layout = serializers.ChoiceField(choices=LAYOUTS, default=Layout.FOUR.value)
    key_image_sop_instance_uids = serializers.ListField(child=serializers.CharField(max_length=64), required=False,
                                                        default=list, max_length=100)


class LinkIssueSerializer(serializers.Serializer):
    valid_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
    phone_number = serializers.RegexField(r"^\+?[0-9 ]{6,20}$", required=False, default="")


def film_json(film: Film) -> dict[str, Any]:
    return {
        "id": film.pk, "study_instance_uid": film.study_instance_uid, "layout": film.layout, "state": film.state,
        "sheets": len(film.sheet_keys), "images": film.image_count, "has_report": bool(film.report),
        "consult_id": film.consult_id, "error_detail": film.error_detail or None, "created_at": film.created_at,
        "finished_at": film.finished_at,
    }


def link_json(link: FilmLink) -> dict[str, Any]:
    return {"id": link.pk, "film_id": link.film_id, "expires_at": link.expires_at, "revoked_at": link.revoked_at,
            "locked_until": link.locked_until, "locked_permanently_at": link.locked_permanently_at,
            "last_opened_at": link.last_opened_at, "created_by": link.created_by, "created_at": link.created_at}


def served_port(request: Request) -> int | None:
    """The port in the Host the clinic used (the one the platform is reached on), if it named one."""
    _, port = split_domain_port(request.get_host())
    return int(port) if port.isdigit() else None


def _film(film_id: int) -> Film:
    film = Film.objects.filter(pk=film_id).first()
    if film is None:
        raise services.FilmNotFound("No such film.")
    return film


def _link(film_id: int, link_id: int) -> FilmLink:
    link = FilmLink.objects.filter(pk=link_id, film_id=film_id, tenant=current_tenant()).first()
    if link is None:
        raise services.LinkNotFound("No such link.")
    return link


class FilmListCreateView(GenericAPIView):
    allowed_roles_by_method = {"GET": TENANT_ROLES, "POST": FILM_MAKER_ROLES}
    serializer_class = FilmRequestSerializer

    def get_queryset(self) -> QuerySet[Film]:
        return Film.objects.order_by("-created_at")

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        films = self.get_queryset()
        study = request.query_params.get("study_instance_uid")
        if study:
            films = films.filter(study_instance_uid=study)
        return Response({"results": [film_json(film) for film in films[:200]]})

    @extend_schema(request=FilmRequestSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        data = FilmRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        film = services.film_request(actor=Actor.from_request(request), requested_by=request.user.username,
                                     **data.validated_data)
        return Response(film_json(film), status=status.HTTP_201_CREATED)


class FilmDetailView(GenericAPIView):
    allowed_roles = TENANT_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request, film_id: int) -> Response:
        film = _film(film_id)
        links = FilmLink.objects.filter(tenant=current_tenant(), film_id=film.pk).order_by("-created_at")
        return Response({**film_json(film), "links": [link_json(link) for link in links]})


class FilmLinkIssueView(GenericAPIView):
    allowed_roles = FILM_MAKER_ROLES
    serializer_class = LinkIssueSerializer

    @extend_schema(request=LinkIssueSerializer, responses={201: dict})
    def post(self, request: Request, film_id: int) -> Response:
        data = LinkIssueSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.film_link_issue(film_id=film_id, actor=Actor.from_request(request),
                                          created_by=request.user.username, served_port=served_port(request),
                                          **data.validated_data)
        qr = segno.make(issued.url, error="m")
        response = Response({
            **link_json(issued.link), "url": issued.url, "token": issued.token, "access_code": issued.access_code,
            # Shown once: the token is stored only as a hash, so the QR code cannot be made again later.
            "qr_png_base64": qr.png_data_uri(scale=6).split(",", 1)[1],
            "qr_svg": qr.svg_inline(scale=6),
        }, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "private, no-store"
        return response


class FilmLinkDetailView(GenericAPIView):
    allowed_roles = TENANT_ROLES

    @extend_schema(responses={200: dict})
    def get(self, request: Request, film_id: int, link_id: int) -> Response:
        link = _link(film_id, link_id)
        if getattr(request.user, "role", None) != Role.CLINIC_ADMIN:
            # The history holds the patient's addresses and times: for the clinic's admins only.
            return Response(link_json(link))
        events = AuditEvent.objects.filter(object_type="film_link", object_id=str(link.pk)).order_by("occurred_at")
        return Response({**link_json(link), "access_history": [
            {"action": event.action, "at": event.occurred_at, "client_ip": event.client_ip, "outcome": event.outcome,
             "detail": event.detail} for event in events[:500]]})


class FilmLinkRevokeView(GenericAPIView):
    allowed_roles = FILM_MAKER_ROLES

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, film_id: int, link_id: int) -> Response:
        _link(film_id, link_id)
        return Response(link_json(services.film_link_revoke(link_id=link_id, actor=Actor.from_request(request))))
