"""STOW-RS (PS3.18 §10.5): parse the request as a stream of parts and hand it to the ingest service."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from apps.archive import services
from apps.audit.services import Actor
from apps.dicom.multipart import MultipartReader, parse_media_type
from apps.dicomweb.errors import InvalidMultipart, LengthRequired, UnsupportedMediaType
from apps.dicomweb.negotiation import DICOM_JSON, NotAcceptable, accepts_json
from apps.dicomweb.serializers import stow_response
from apps.dicomweb.views.base import service_root

_SUPPORTED_PART_TYPE = "application/dicom"
_METADATA_PART_TYPES = ("application/dicom+json", "application/dicom+xml")


def _limited(read: Callable[[int], bytes], limit: int) -> Callable[[int], bytes]:
    """A read function that refuses to pass more than `limit` bytes (bodies without Content-Length)."""
    received = 0

    def read_limited(size: int) -> bytes:
        nonlocal received
        data = read(size)
        received += len(data)
        if received > limit:
            raise services.RequestBodyTooLarge(f"The request body is larger than the {limit} bytes accepted.")
        return data

    return read_limited


def _body_reader(request: HttpRequest) -> Callable[[int], bytes] | None:
    """How to read the body as a stream: Django's stream when the length is known, the server's
    de-chunked input for chunked requests (gunicorn sets wsgi.input_terminated), else None."""
    if request.META.get("CONTENT_LENGTH"):
        return request.read
    if request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"].read
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    return request.read


def store(request: HttpRequest, actor: Actor, study_instance_uid: str | None) -> HttpResponseBase:
    try:
        content_type = parse_media_type(request.META.get("CONTENT_TYPE", ""))
    except ValueError as error:
        raise UnsupportedMediaType("Send multipart/related; type=\"application/dicom\".") from error
    part_type = (content_type.parameter("type") or _SUPPORTED_PART_TYPE).strip().lower()
    if content_type.essence != "multipart/related" or part_type != _SUPPORTED_PART_TYPE:
        detail = (
            "Metadata-and-bulk-data requests are not supported; send DICOM files as "
            if part_type in _METADATA_PART_TYPES else "Send "
        ) + "multipart/related; type=\"application/dicom\" (PS3.18 §10.5.1)."
        raise UnsupportedMediaType(detail)
    boundary = content_type.parameter("boundary")
    if not boundary:
        raise InvalidMultipart("The Content-Type names no multipart boundary.")
    if not accepts_json(request.headers.get("Accept")):
        raise NotAcceptable("The STOW-RS response is application/dicom+json.")
    limit = settings.STOW_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise services.RequestBodyTooLarge(f"The request body is larger than the {limit} bytes accepted.")
    read = _body_reader(request)
    if read is None:
        raise LengthRequired("This server cannot read a chunked request body here; send a Content-Length.")
    # A boundary RFC 2046 refuses (over 70 characters, say) raises MultipartError here: a 400.
    parts = MultipartReader(_limited(read, limit), boundary)
    report = services.instances_store(parts=parts, actor=actor, expected_study_instance_uid=study_instance_uid)
    if not report.stored:
        status = 409
    elif report.failed or any(item.warnings for item in report.stored):
        status = 202
    else:
        status = 200
    root = service_root(request)
    response = HttpResponse(
        stow_response(report, service_root=root, study_instance_uid=study_instance_uid),
        status=status, content_type=DICOM_JSON,
    )
    details = [
        f'299 {root}: "{item.sop_instance_uid or "part"} failed ({int(item.reason):04X}): {_quoted(item.detail)}"'
        for item in report.failed[:10]
    ]
    if details:
        response["Warning"] = ", ".join(details)
    return response


def _quoted(text: str) -> str:
    """Text fit for an HTTP quoted-string on one line."""
    return text.replace("\\", "/").replace('"', "'").replace("\r", " ").replace("\n", " ")[:200]
