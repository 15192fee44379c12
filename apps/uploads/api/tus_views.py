"""tus 1.0.0 endpoints of an upload session (https://tus.io/protocols/resumable-upload, core protocol
with the creation, termination and checksum extensions): the upload page's tus-js-client sends each
file here in pieces and resumes from the server's offset after a dropped connection or a closed
tab. Thin: headers in, one call of apps.uploads.resumable, headers out (docs/uploads.md)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any, BinaryIO, cast

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.audit.services import Actor
from apps.core.errors import DomainError, InvalidInput
from apps.uploads import resumable
from apps.uploads.api.views import UploadView
from apps.uploads.models import UploadTransfer

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum"
PIECE_CONTENT_TYPE = "application/offset+octet-stream"


class UnsupportedTusVersion(DomainError):
    code = "tus_version_unsupported"
    status = 412


class WrongPieceContentType(DomainError):
    code = "unsupported_media_type"
    status = 415


def _metadata(header: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs (tus 1.0.0 "Upload-Metadata")."""
    values: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            values[key] = base64.b64decode(encoded, validate=True).decode("utf-8") if encoded else ""
        except (binascii.Error, UnicodeDecodeError) as error:
            raise InvalidInput(f"Upload-Metadata value of {key!r} is not base64 UTF-8.", code="upload_metadata_invalid") from error
    return values


def _file_name(metadata: dict[str, str]) -> str:
    """A file's own name, never a path: a name with a separator, a control character or a dot-only
    name is refused rather than silently changed."""
    name = metadata.get("filename", "")
    if not name or len(name) > 255 or name in {".", ".."} or any(ch in name for ch in "/\\") \
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInput("The file name must be a plain name: no folders, no control characters.",
                           code="upload_file_name_invalid")
    return name


def _integer_header(request: Request, name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit():
        raise InvalidInput(f"{name} must be a non-negative integer.", code="tus_header_invalid")
    return int(raw)


class TusView(UploadView):
    """Every answer carries Tus-Resumable; every request but OPTIONS must send it."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
            raise UnsupportedTusVersion(f"Send Tus-Resumable: {TUS_VERSION}.")

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        response["Tus-Version"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        return response

    def transfer_headers(self, transfer: UploadTransfer) -> dict[str, str]:
        return {"Upload-Offset": str(transfer.offset), "Upload-Length": str(transfer.length)}


class TusCreateView(TusView):
    @extend_schema(request=None, responses={201: None})
    def post(self, request: Request, session_id: uuid.UUID) -> Response:
        session = self.session_or_404(session_id)
        transfer = resumable.upload_transfer_create(
            session_id=session.pk, name=_file_name(_metadata(request.headers.get("Upload-Metadata", ""))),
            length=_integer_header(request, "Upload-Length"),
        )
        location = request.build_absolute_uri(f"{request.path.rstrip('/')}/{transfer.pk}/")
        return Response(status=201, headers={"Location": location, **self.transfer_headers(transfer)})

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        return Response(status=204, headers={
            "Tus-Extension": TUS_EXTENSIONS, "Tus-Max-Size": str(settings.UPLOAD_MAX_FILE_BYTES),
            "Tus-Checksum-Algorithm": ",".join(resumable.CHECKSUM_ALGORITHMS),
        })


class TusTransferView(TusView):
    @extend_schema(request=None, responses={200: None})
    def head(self, request: Request, session_id: uuid.UUID, transfer_id: uuid.UUID) -> Response:
        session = self.session_or_404(session_id)
        transfer = resumable.upload_transfer_offset(session_id=session.pk, transfer_id=transfer_id,
                                                    actor=Actor.from_request(request))
        return Response(status=200, headers=self.transfer_headers(transfer))

    @extend_schema(request={PIECE_CONTENT_TYPE: {"type": "string", "format": "binary"}}, responses={204: None})
    def patch(self, request: Request, session_id: uuid.UUID, transfer_id: uuid.UUID) -> Response:
        session = self.session_or_404(session_id)
        if request.content_type.split(";")[0].strip() != PIECE_CONTENT_TYPE:
            raise WrongPieceContentType(f"A PATCH body must be sent as {PIECE_CONTENT_TYPE}.")
        declared = request.META.get("CONTENT_LENGTH")
        transfer = resumable.upload_transfer_append(
            session_id=session.pk, transfer_id=transfer_id, offset=_integer_header(request, "Upload-Offset"),
            stream=cast(BinaryIO, request._request), declared_length=int(declared) if declared and declared.isdigit() else None,
            checksum_header=request.headers.get("Upload-Checksum", ""), actor=Actor.from_request(request),
        )
        return Response(status=204, headers={"Upload-Offset": str(transfer.offset)})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, session_id: uuid.UUID, transfer_id: uuid.UUID) -> Response:
        session = self.session_or_404(session_id)
        resumable.upload_transfer_terminate(session_id=session.pk, transfer_id=transfer_id)
        return Response(status=204)
