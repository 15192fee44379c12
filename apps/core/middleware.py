"""Tenant routing by Host (django-tenants) with clear JSON answers for unknown and suspended tenants,
and the refusal of query strings no view could use."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from apps.core.errors import json_error
from tenants.selectors import tenant_for_domain


class TenantRoutingMiddleware(TenantMainMiddleware):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        from apps.core.health import readyz
        from apps.core.outages import OUTAGE_ERRORS, outage_response

        try:
            return super().process_request(request)  # type: ignore[no-any-return]
        except OUTAGE_ERRORS as error:
            # The tenant is looked up in the database: when that fails, readiness still answers
            # with its checks (the database one failed), everything else a 503 to retry.
            if request.path == "/readyz":
                return readyz(request)
            return outage_response(error)

    def get_tenant(self, domain_model: Any, hostname: str) -> Any:
        tenant = tenant_for_domain(hostname)
        if tenant is None:
            raise domain_model.DoesNotExist(hostname)
        return tenant

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse:  # type: ignore[override]
        # django-tenants answers an empty 404; say which host was not recognised.
        return json_error("unknown_tenant", f"No tenant is served on host {hostname!r}.", 404)


class SuspendedTenantMiddleware:
    """Every request to a suspended tenant gets a 403 JSON answer, pages and APIs alike."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if (
            tenant is not None
            and tenant.schema_name != get_public_schema_name()
            and not tenant.is_active
            and request.path not in {"/healthz", "/readyz"}
        ):
            return json_error("tenant_suspended", f"Tenant {tenant.slug} is suspended.", 403)
        return self.get_response(request)


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
