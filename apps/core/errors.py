"""Domain errors and the one place that turns errors into HTTP answers `{code, detail}`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response


class DomainError(Exception):
    """Raised by services; never an HTTP response. Subclasses set a stable `code` and a `status`."""

    code = "domain_error"
    status = 400

    def __init__(self, detail: str | None = None, *, code: str | None = None, status: int | None = None) -> None:
        self.detail = detail or self.__class__.__doc__ or self.code
        if code:
            self.code = code
        if status:
            self.status = status
        super().__init__(self.detail)


class DependencyUnavailable(DomainError):
    """A service the platform depends on (object storage, say) does not answer: transient, a 503 to
    retry (apps.core.outages). The layer that talks to the dependency raises a subclass."""

    code = "service_unavailable"
    status = 503


class NotFound(DomainError):
    code = "not_found"
    status = 404


class StudyNotFound(NotFound):
    """A study the request names is not (or no longer) in this tenant's archive."""

    code = "study_not_found"


class Conflict(DomainError):
    code = "conflict"
    status = 409


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class InvalidInput(DomainError):
    code = "invalid"
    status = 400


def error_body(code: str, detail: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail}


def json_error(code: str, detail: Any, status: int) -> JsonResponse:
    return JsonResponse(error_body(code, detail), status=status)


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
    drf_exceptions.ParseError: "parse_error",
    drf_exceptions.ValidationError: "invalid",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error is `{code, detail}` with the fitting status."""
    from rest_framework.views import exception_handler as drf_default_handler

    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.detail), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response(error_body("invalid", detail), status=400)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_default_handler(exc, context)
    if response is None:
        return None
    code = next((name for kind, name in _DRF_CODES.items() if isinstance(exc, kind)), "error")
    detail = exc.detail if isinstance(exc, drf_exceptions.APIException) else str(exc)
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = error_body(code, detail)
    else:
        response.data = error_body(code, str(detail))
    return response


# --- Django's error handlers (handler400/404/500 of the URL configurations) -----------------------------


def _answers_json(request: HttpRequest) -> bool:
    """API and DICOMweb paths (also a consult-scoped DICOMweb root) answer errors as JSON; pages keep
    their HTML pages."""
    path = request.path
    return path.startswith("/api/") or path.startswith("/dicomweb") or "/dicomweb/" in path or path.endswith("/dicomweb")


def not_found_handler(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A path no route matches (for DICOMweb: a UID that is not digits and dots)."""
    if _answers_json(request):
        return json_error("not_found", "No resource at this path.", 404)
    return defaults.page_not_found(request, exception)


def bad_request_handler(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A request Django refuses before any view (a suspicious operation, a body over its limits)."""
    if _answers_json(request):
        return json_error("bad_request", "The request cannot be understood.", 400)
    return defaults.bad_request(request, exception)


def server_error_handler(request: HttpRequest) -> HttpResponse:
    """A fault no view turned into an answer: still JSON on API paths, never an HTML page there; a
    dependency outage is a 503 to retry on every path (apps.core.outages)."""
    import sys

    from apps.core.outages import OUTAGE_ERRORS, outage_response

    error = sys.exc_info()[1]
    if error is not None and isinstance(error, OUTAGE_ERRORS):
        return outage_response(error)
    if _answers_json(request):
        return json_error("server_error", "The server could not complete the request.", 500)
    return defaults.server_error(request)
