"""Upload sessions for a clinic's web page: open, add files or zips, finish, then poll progress."""

import uuid
from typing import cast

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.parsers import FileUploadParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.services import Actor
from apps.core.errors import InvalidInput
from apps.uploads import selectors, services
from apps.uploads.api import serializers
from apps.uploads.models import UploadSession

UPLOADER_ROLES = {Role.CLINIC_ADMIN, Role.TECHNOLOGIST, Role.HOSPITAL_ADMIN}


class UploadView(GenericAPIView):
    allowed_roles = UPLOADER_ROLES

    def session_or_404(self, session_id: uuid.UUID) -> UploadSession:
        session = selectors.upload_session_for_user(session_id=session_id, user=cast(User, self.request.user))
        if session is None:
            raise Http404
        return session


class UploadSessionListOpenView(UploadView, ListAPIView):
    serializer_class = serializers.UploadSessionSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.upload_sessions_for_user(user=cast(User, self.request.user))

    @extend_schema(
        request=serializers.UploadSessionOpenSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={201: serializers.UploadSessionSerializer},
    )
    def post(self, request: Request) -> Response:
        data = serializers.UploadSessionOpenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.upload_session_open(
            user=cast(User, request.user), label=data.validated_data["label"],  # authenticated: see permissions
            idempotency_key=request.headers.get("Idempotency-Key", "")[:200], actor=Actor.from_request(request),
        )
        return Response(serializers.UploadSessionSerializer(session).data, status=status.HTTP_201_CREATED)


class UploadSessionDetailView(UploadView):
    serializer_class = serializers.UploadSessionSerializer

    def get(self, request: Request, session_id: uuid.UUID) -> Response:
        return Response(serializers.UploadSessionSerializer(self.session_or_404(session_id)).data)

    def delete(self, request: Request, session_id: uuid.UUID) -> Response:
        session = services.upload_session_cancel(
            session_id=self.session_or_404(session_id).pk, actor=Actor.from_request(request)
        )
        return Response(serializers.UploadSessionSerializer(session).data)


class UploadFileView(UploadView, ListAPIView):
    """POST a file as the raw body (Content-Disposition: attachment; filename=...) or as
    multipart/form-data field `file` (one or more); each is streamed to storage as it arrives."""

    serializer_class = serializers.UploadFileSerializer
    parser_classes = [MultiPartParser, FileUploadParser]

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return self.session_or_404(self.kwargs["session_id"]).files.all()

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}},
                   responses={201: serializers.UploadFileSerializer(many=True)})
    def post(self, request: Request, session_id: uuid.UUID) -> Response:
        session = self.session_or_404(session_id)
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > settings.UPLOAD_MAX_FILE_BYTES * 4:
            # Refuse before reading: a body this large cannot hold acceptable files.
            raise services.UploadTooLarge(f"The request body is larger than {settings.UPLOAD_MAX_FILE_BYTES * 4} bytes.")
        uploaded = request.FILES.getlist("file")
        if not uploaded:
            raise InvalidInput("Send the file as the request body or as form field 'file'.", code="no_file")
        actor = Actor.from_request(request)
        received = [
            services.upload_file_receive(session_id=session.pk, name=item.name, stream=item, actor=actor)
            for item in uploaded
        ]
        return Response(serializers.UploadFileSerializer(received, many=True).data, status=status.HTTP_201_CREATED)


class UploadSessionFinishView(UploadView):
    serializer_class = serializers.UploadSessionSerializer

    @extend_schema(request=None)
    def post(self, request: Request, session_id: uuid.UUID) -> Response:
        session = services.upload_session_finish(
            session_id=self.session_or_404(session_id).pk, actor=Actor.from_request(request)
        )
        return Response(serializers.UploadSessionSerializer(session).data, status=status.HTTP_202_ACCEPTED)


class UploadItemListView(UploadView, ListAPIView):
    serializer_class = serializers.UploadItemSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        session = self.session_or_404(self.kwargs["session_id"])
        return selectors.upload_items(session=session, status=self.request.query_params.get("status"))
