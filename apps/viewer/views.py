"""The embedded viewer's page and configuration, for signed-in staff of the tenant domain."""

from __future__ import annotations

from csp import constants as csp_constants
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from apps.viewer.app_config import app_config_script
from apps.viewer.build import index_html, inline_script_hashes
from tenants.context import current_tenant

# OHIF's needs (docs/viewer.md "Content Security Policy"), on the viewer's page only: its inline
# bootstrap scripts by hash (added per response), WebAssembly image codecs, web workers started from
# blob: URLs, images and fonts from data:/blob: URLs; everything else from this origin only.
VIEWER_CONTENT_SECURITY_POLICY: dict[str, list[str]] = {
    "default-src": [csp_constants.SELF],
    "script-src": [csp_constants.SELF, csp_constants.WASM_UNSAFE_EVAL],
    "worker-src": [csp_constants.SELF, "blob:"],
    "style-src": [csp_constants.SELF, csp_constants.UNSAFE_INLINE],
    "img-src": [csp_constants.SELF, "data:", "blob:"],
    "font-src": [csp_constants.SELF, "data:"],
    "connect-src": [csp_constants.SELF, "data:", "blob:"],
    "object-src": [csp_constants.NONE],
    "base-uri": [csp_constants.SELF],
    "form-action": [csp_constants.SELF],
    "frame-ancestors": [csp_constants.NONE],
}


@login_required
@require_safe
def viewer_page(request: HttpRequest, route: str = "") -> HttpResponse:
    """Every OHIF route under /viewer/ (study list, /viewer/viewer?StudyInstanceUIDs=…, a consult's)
    is OHIF's single page; its router reads the path."""
    response = HttpResponse(index_html(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-cache"
    # django-csp's per-response policy (what its @csp decorator sets), in place of the pages' policy.
    response._csp_config = {  # type: ignore[attr-defined]
        **VIEWER_CONTENT_SECURITY_POLICY,
        "script-src": [*VIEWER_CONTENT_SECURITY_POLICY["script-src"], *inline_script_hashes()]}
    return response


@login_required
@require_safe
def app_config(request: HttpRequest) -> HttpResponse:
    """OHIF's `window.config` for this tenant domain (apps.viewer.app_config)."""
    origin = f"{request.scheme}://{request.get_host()}"
    response = HttpResponse(app_config_script(origin=origin, tenant_name=current_tenant().name),
                            content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response
