"""Project-wide request rules that know nothing of tenants: JSON answers are not cached, and query
strings no view could use are refused. Tenant routing is tenancy's own (tenants.middleware)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.core.errors import json_error

JSON_CONTENT_TYPES = ("application/json", "application/dicom+json", "application/problem+json")


class NoStoreJsonMiddleware:
    """JSON answers carry patient data or account data: no browser, proxy or CDN may keep a copy.

    Views that choose their own caching (rendered images, frames) set Cache-Control themselves and
    are left alone (docs/security.md, "What is logged")."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Cache-Control" not in response and response.get("Content-Type", "").startswith(JSON_CONTENT_TYPES):
            response["Cache-Control"] = "private, no-store"
        return response


class NulInQueryMiddleware:
    """A query parameter holding a NUL character answers 400 `invalid_query`, for every endpoint.

    No filter of the REST API or QIDO-RS can match one (PostgreSQL text cannot hold NUL, and the
    driver refuses to send it: a 500 in every view that filters on it). Only `%00` decodes to NUL,
    so requests without it pay one substring test."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "%00" in request.META.get("QUERY_STRING", ""):
            for name, values in request.GET.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    shown = name.replace("\x00", "%00")[:80]
                    return json_error("invalid_query", f"The query parameter {shown!r} contains a NUL character.", 400)
        return self.get_response(request)
