"""Tenant routing by Host (django-tenants) with clear JSON answers for unknown and suspended tenants."""

import zoneinfo
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import resolve
from django.utils import timezone
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from apps.core.errors import json_error
from apps.core.outages import OUTAGE_ERRORS, outage_response
from tenants.selectors import tenant_for_domain


class TenantRoutingMiddleware(TenantMainMiddleware):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            return super().process_request(request)  # type: ignore[no-any-return]
        except OUTAGE_ERRORS as error:
            # The tenant is looked up in the database: when that fails, readiness still answers
            # with its checks (the database one failed), everything else a 503 to retry.
            if request.path == "/readyz":
                readiness = resolve(request.path_info, urlconf=settings.PUBLIC_SCHEMA_URLCONF)
                return readiness.func(request)  # type: ignore[no-any-return]
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


class TenantTimeZoneMiddleware:
    """Times on the pages of a tenant's domain are rendered in the tenant's own time zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = getattr(getattr(request, "tenant", None), "time_zone", "")
        try:
            zone = zoneinfo.ZoneInfo(name) if name else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None  # a bad name in the row: the settings' zone, not a failed page
        if zone is None:
            return self.get_response(request)
        with timezone.override(zone):
            return self.get_response(request)
