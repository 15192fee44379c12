"""What every DICOMweb view shares: Bearer authentication, roles, errors as {code, detail}, and
which archive and studies a request reaches.

Plain Django views rather than DRF: DICOMweb answers are streams and multipart bodies negotiated
by PS3.18 rules, not serializer output. The rules are the API's: a token of the tenant whose domain
is called (401 otherwise), a role the view admits (deny by default, 403), domain errors turned into
JSON with their status in one place: handlers raise, `DicomwebView.dispatch` answers through the
table in apps.dicomweb.errors. CORS (and preflight OPTIONS without a token) is handled by
django-cors-headers before a view runs.

The same views serve two service roots (docs/dicomweb.md): the tenant's own `/dicomweb` (its own
archive, nothing else) and, on a hospital's domain, a consult's `/consults/{consult_id}/dicomweb`
(read-only: exactly that consult's studies, read from the sending clinic's archive through the
consult's grant, apps.consults.grants). Which root a request came through is its `ServiceScope`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.authentication import bearer_secret
from apps.accounts.permissions import allowed_roles_for
from apps.accounts.roles import ADMIN_ROLES, TENANT_ROLES, Role
from apps.accounts.services import token_authenticate
from apps.audit.services import Actor
from apps.consults.grants import (
    ConsultGrant,
    chunks_in_tenant,
    consult_read_through_grant,
    consult_service_path,
)
from apps.dicomweb.errors import MethodNotAllowed, NotAuthenticated, PermissionDenied, error_answer
from apps.dicomweb.negotiation import effective_accept

READER_ROLES = frozenset(TENANT_ROLES)
# Radiologists store results (reports as SR, AI-reviewed objects) back into the archive.
STORER_ROLES = frozenset({Role.TECHNOLOGIST, Role.CLINIC_ADMIN, Role.HOSPITAL_ADMIN, Role.RADIOLOGIST})
DELETER_ROLES = frozenset(ADMIN_ROLES)
SERVICE_PATH = "/dicomweb"
# Grant reads must not outlive the grant in any cache (a browser's, a proxy's): see docs/security.md.
GRANT_READ_CACHE_CONTROL = "private, no-store"


@dataclass(frozen=True)
class ServiceScope:
    """The service root a request came through, and the studies it may reach (None: the whole archive
    of the tenant whose schema the request runs in)."""

    root_path: str
    study_instance_uids: frozenset[str] | None = None


TENANT_ARCHIVE_SCOPE = ServiceScope(root_path=SERVICE_PATH)


def request_scope(request: HttpRequest) -> ServiceScope:
    scope = getattr(request, "dicomweb_scope", None)
    return scope if isinstance(scope, ServiceScope) else TENANT_ARCHIVE_SCOPE


def answer_through_grant(response: HttpResponseBase, grant: ConsultGrant) -> HttpResponseBase:
    """A consult root's answer: a streamed body is made in the clinic's schema too (it is produced
    after the view has left it), and no cache keeps it past the grant."""
    if isinstance(response, StreamingHttpResponse):
        content = response.streaming_content
        if isinstance(content, Iterator):  # every DICOMweb view streams synchronously
            response.streaming_content = chunks_in_tenant(grant.clinic, content)
    response["Cache-Control"] = GRANT_READ_CACHE_CONTROL
    return response


def accepted_media(request: HttpRequest) -> str | None:
    """What the request accepts: its `accept` query parameter, else its Accept header (PS3.18 §8.3.3.1)."""
    return effective_accept(request.headers.get("Accept"), request.GET.getlist("accept"))


def service_root(request: HttpRequest) -> str:
    """The absolute DICOMweb service root of this request (scheme, the tenant domain, the root's path)."""
    return request.build_absolute_uri(request_scope(request).root_path)


@method_decorator(csrf_exempt, name="dispatch")
class DicomwebView(View):
    """Subclasses set `allowed_roles` or `allowed_roles_by_method` (HEAD follows GET)."""

    allowed_roles: frozenset[str] | None = None
    allowed_roles_by_method: dict[str, frozenset[str]] = {}
    http_method_names = ["get", "head", "post", "delete", "options"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Every error a handler (or the service it calls) raises becomes its answer here, and only
        here: apps.dicomweb.errors holds the table."""
        try:
            return self._dispatch(request, *args, **kwargs)
        except Exception as error:
            answer = error_answer(error)
            if answer is None:
                raise  # a fault: handler500 answers it (apps.core.errors.server_error_handler)
            return answer

    def _dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "OPTIONS":
            return super().dispatch(request, *args, **kwargs)
        self._authenticate(request, kwargs)
        method = "GET" if request.method == "HEAD" else (request.method or "GET")
        # The URL of a consult's root carries the consult; the handlers take only DICOM UIDs.
        consult_id = kwargs.pop("consult_id", None)
        # A method the resource does not have is 405 for everyone (PS3.18 §8.1.3), whatever the role:
        # asked before the role, or an admin's PUT would read as "your role may not do this".
        if consult_id is not None and method != "GET":
            raise MethodNotAllowed("A consult's DICOMweb root is read-only.", supported=["GET"])
        supported = self.supported_methods()
        if method not in supported:
            raise MethodNotAllowed(f"{request.method} is not supported on this resource.", supported=supported)
        roles = allowed_roles_for(self, method)
        if roles is None or getattr(request.user, "role", None) not in roles:
            raise PermissionDenied("Your role may not do this.")
        if consult_id is None:
            return super().dispatch(request, *args, **kwargs)
        # Under `/consults/{consult_id}/dicomweb`: read-only, in the clinic's schema, limited to the
        # consult's studies, audited on both sides (docs/consults.md).
        with consult_read_through_grant(consult_id=consult_id, actor=Actor.from_request(request),
                                        path=request.path, study_instance_uid=kwargs.get("study")) as grant:
            request.dicomweb_scope = ServiceScope(  # type: ignore[attr-defined]
                root_path=consult_service_path(consult_id), study_instance_uids=grant.study_instance_uids)
            response = super().dispatch(request, *args, **kwargs)
        return answer_through_grant(response, grant)

    @staticmethod
    def _authenticate(request: HttpRequest, kwargs: dict[str, Any]) -> None:
        """The Bearer token's user on `request.user`, or the signed-in session for reads."""
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            # The reading pages show frames with the signed-in session (same origin, reads only).
            signed_in = getattr(getattr(request, "user", None), "is_authenticated", False)
            if not (signed_in and request.method in ("GET", "HEAD")):
                raise NotAuthenticated("Send 'Authorization: Bearer <token>'.")
            return
        secret = bearer_secret(header)
        if secret is None:
            raise NotAuthenticated("Authorization header must be 'Bearer <token>'.", code="authentication_failed")
        token = token_authenticate(secret)
        if token is None:
            raise NotAuthenticated("Invalid, expired or revoked token for this tenant.", code="authentication_failed")
        request.user = token.user
        scope = token.study_instance_uid_scope
        # A study-scoped token (an AI engine's) names a study of its own tenant's archive; the same
        # UID under a consult's root would be another tenant's study, so it never reaches one.
        if scope and (kwargs.get("study") != scope or "consult_id" in kwargs):
            raise PermissionDenied("This token reaches only its own study.", code="token_out_of_scope")

    def supported_methods(self) -> list[str]:
        """The methods this resource has a handler for (HEAD is answered by GET's)."""
        return [name.upper() for name in ("get", "post", "delete") if hasattr(self, name)]

    def actor(self) -> Actor:
        return Actor.from_request(self.request)
