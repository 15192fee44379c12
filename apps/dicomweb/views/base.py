"""What every DICOMweb view shares: Bearer authentication, roles, and errors as {code, detail}.

Plain Django views rather than DRF: DICOMweb answers are streams and multipart bodies negotiated
by PS3.18 rules, not serializer output. The rules are the API's: a token of the tenant whose domain
is called (401 otherwise), a role the view admits (deny by default, 403), domain errors turned into
JSON with their status in one place. CORS (and preflight OPTIONS without a token) is handled by
django-cors-headers before a view runs.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.authentication import bearer_secret
from apps.accounts.permissions import allowed_roles_for
from apps.accounts.roles import ADMIN_ROLES, TENANT_ROLES, Role
from apps.accounts.services import token_authenticate
from apps.audit.services import Actor
from apps.core.errors import DomainError, error_body
from apps.dicomweb.negotiation import NotAcceptable

READER_ROLES = frozenset(TENANT_ROLES)
# Radiologists store results (reports as SR, AI-reviewed objects) back into the archive.
STORER_ROLES = frozenset({Role.TECHNOLOGIST, Role.CLINIC_ADMIN, Role.HOSPITAL_ADMIN, Role.RADIOLOGIST})
DELETER_ROLES = frozenset(ADMIN_ROLES)
SERVICE_PATH = "/dicomweb"


def error_response(code: str, detail: str, status: int, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, detail), status=status, headers=headers)


def unauthenticated(detail: str, code: str) -> JsonResponse:
    return error_response(code, detail, 401, {"WWW-Authenticate": 'Bearer realm="imaging-cloud"'})


def service_root(request: HttpRequest) -> str:
    """The absolute DICOMweb service root of this request (scheme, the tenant domain, /dicomweb)."""
    return request.build_absolute_uri(SERVICE_PATH)


@method_decorator(csrf_exempt, name="dispatch")
class DicomwebView(View):
    """Subclasses set `allowed_roles` or `allowed_roles_by_method` (HEAD follows GET)."""

    allowed_roles: frozenset[str] | None = None
    allowed_roles_by_method: dict[str, frozenset[str]] = {}
    http_method_names = ["get", "head", "post", "delete", "options"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "OPTIONS":
            return super().dispatch(request, *args, **kwargs)
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            # The reading pages show frames with the signed-in session (same origin, reads only).
            signed_in = getattr(getattr(request, "user", None), "is_authenticated", False)
            if not (signed_in and request.method in ("GET", "HEAD")):
                return unauthenticated("Send 'Authorization: Bearer <token>'.", "not_authenticated")
        else:
            secret = bearer_secret(header)
            if secret is None:
                return unauthenticated("Authorization header must be 'Bearer <token>'.", "authentication_failed")
            token = token_authenticate(secret)
            if token is None:
                return unauthenticated("Invalid, expired or revoked token for this tenant.", "authentication_failed")
            request.user = token.user
            scope = token.study_instance_uid_scope
            if scope and kwargs.get("study") != scope:
                return error_response("token_out_of_scope", "This token reaches only its own study.", 403)
        user = request.user
        method = "GET" if request.method == "HEAD" else (request.method or "GET")
        roles = allowed_roles_for(self, method)
        if roles is None or getattr(user, "role", None) not in roles:
            return error_response("permission_denied", "Your role may not do this.", 403)
        try:
            study = kwargs.get("study")
            if study and method == "GET":
                # A hospital reads a clinic's study only through an open consult (apps.consults.grants).
                from apps.consults.grants import study_read_through_grant

                with study_read_through_grant(study_instance_uid=study, actor=Actor.from_request(request),
                                              path=request.path):
                    return super().dispatch(request, *args, **kwargs)
            return super().dispatch(request, *args, **kwargs)
        except DomainError as error:
            return error_response(error.code, str(error.detail), error.status)
        except NotAcceptable as error:
            return error_response("not_acceptable", str(error), 406)

    def actor(self) -> Actor:
        return Actor.from_request(self.request)
