"""The OpenAPI schema of the routes the requested domain serves."""

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response


class DomainSchemaView(SpectacularAPIView):
    """django-tenants serves the platform domain from PUBLIC_SCHEMA_URLCONF by setting
    `request.urlconf`; drf-spectacular reads ROOT_URLCONF unless told, which would document the tenant
    API on the platform domain and leave the operator API undocumented."""

    @extend_schema(exclude=True)  # the schema does not describe itself (our get() hides the parent's marker)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.urlconf = getattr(request, "urlconf", None)
        return super().get(request, *args, **kwargs)

