"""DICOMweb's one table from an exception to its answer, applied by `DicomwebView.dispatch` alone.

Views and the services they call raise; nothing under apps.dicomweb.views builds an error answer.
Every answer is JSON `{code, detail}` (docs/dicomweb.md) with its status and the headers that status
needs: `Allow` with a 405 (RFC 9110 §15.5.6), `WWW-Authenticate` with a 401 (RFC 6750 §3),
`Retry-After` with a 503 for a dependency that does not answer (apps.core.outages).

Domain errors (`apps.core.errors.DomainError`) carry their own code and status. The DICOM core
(`apps.dicom`) cannot import them, so its plain exceptions are given theirs here, in `PLAIN_ANSWERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse

from apps.core.errors import DependencyUnavailable, DomainError, Forbidden, InvalidInput, error_body
from apps.core.outages import OUTAGE_ERRORS, outage_response
from apps.dicom.matching import QueryError
from apps.dicom.multipart import MultipartError
from apps.dicom.rendering import RenderingNotPossible, RenderingParameterError
from apps.dicom.transcode import FrameNotFound, TranscodeNotPossible
from apps.dicom.wado_uri import WadoUriError
from apps.dicomweb.negotiation import NotAcceptable

# --- the protocol's own refusals (the views raise these) ------------------------------------------------


class NotAuthenticated(DomainError):
    """No usable Bearer token: 401, with the challenge RFC 6750 §3 requires."""

    code = "not_authenticated"
    status = 401


class MethodNotAllowed(DomainError):
    """A method the resource does not have (PS3.18 §8.1.3): 405 naming the ones it has."""

    code = "method_not_allowed"
    status = 405

    def __init__(self, detail: str, *, supported: list[str]) -> None:
        super().__init__(detail)
        # HEAD goes with GET; OPTIONS is the CORS preflight every resource answers.
        with_head = [*supported[:1], "HEAD", *supported[1:]] if "GET" in supported else list(supported)
        self.allow = ", ".join([*with_head, "OPTIONS"])


class PermissionDenied(Forbidden):
    code = "permission_denied"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    status = 415


class LengthRequired(DomainError):
    code = "length_required"
    status = 411


class InvalidFrameList(InvalidInput):
    code = "invalid_frame_list"


class InvalidMultipart(InvalidInput):
    code = "invalid_multipart"


# --- the table ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlainAnswer:
    status: int
    code: str
    detail_suffix: str = ""


# First match wins: FrameNotFound and TranscodeNotPossible share a base class, so each is named.
PLAIN_ANSWERS: tuple[tuple[type[Exception], PlainAnswer], ...] = (
    (NotAcceptable, PlainAnswer(406, "not_acceptable")),
    (FrameNotFound, PlainAnswer(404, "frame_not_found")),
    (TranscodeNotPossible, PlainAnswer(406, "not_acceptable")),
    (RenderingParameterError, PlainAnswer(400, "invalid_rendering_parameter")),
    (RenderingNotPossible, PlainAnswer(406, "rendering_not_possible")),
    (QueryError, PlainAnswer(400, "invalid_query")),
    # Only the reader's constructor raises it in a view (a boundary RFC 2046 refuses); once parts
    # are read, the ingest service turns a malformed body into per-instance failures.
    (MultipartError, PlainAnswer(400, "invalid_multipart", " (RFC 2046 §5.1.1); nothing was stored.")),
)


def error_answer(error: Exception) -> JsonResponse | None:
    """The DICOMweb answer to an error a view raised; None for a fault (it goes on to handler500)."""
    if isinstance(error, DomainError):
        return _domain_answer(error)
    if isinstance(error, WadoUriError):  # carries its own code and status (PS3.18 §9)
        return _json(error.status, error.code, str(error))
    for kind, answer in PLAIN_ANSWERS:
        if isinstance(error, kind):
            # A multipart error names what was wrong (invalid_boundary, …): its code is the more precise one.
            code = error.code if isinstance(error, MultipartError) else answer.code
            return _json(answer.status, code, f"{error}{answer.detail_suffix}")
    if isinstance(error, OUTAGE_ERRORS):
        return outage_response(error)
    return None


def _domain_answer(error: DomainError) -> JsonResponse:
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = error.allow
    elif isinstance(error, NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="imaging-cloud"'
    elif isinstance(error, DependencyUnavailable):
        headers["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
        headers["Cache-Control"] = "no-store"
    return _json(error.status, error.code, str(error.detail), headers)


def _json(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, detail), status=status, headers=headers)
