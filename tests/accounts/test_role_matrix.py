"""Deny by default: each API route admits exactly the roles it names; every other role gets
403 {code: permission_denied}. Clinic roles are tried on a clinic, hospital roles on a hospital.

DICOMweb's roles are specified with DICOMweb (tests/dicomweb)."""

from __future__ import annotations

import pytest

from apps.accounts.models import User
from tests.support.platform import ROLES_BY_KIND, unique_suffix

ADMINS = {"clinic_admin", "hospital_admin"}
EVERY_TENANT_ROLE = set(ROLES_BY_KIND["clinic"]) | set(ROLES_BY_KIND["hospital"])
UPLOADERS = {"clinic_admin", "technologist", "hospital_admin"}

# route -> roles admitted. `{me}` is the caller's own user id.
TENANT_ROUTE_ROLES: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/me/"): EVERY_TENANT_ROLE,
    ("GET", "/api/v1/users/"): ADMINS,
    ("POST", "/api/v1/users/"): ADMINS,
    ("GET", "/api/v1/users/{me}/"): ADMINS,
    ("PATCH", "/api/v1/users/{me}/"): ADMINS,
    ("GET", "/api/v1/tokens/"): EVERY_TENANT_ROLE,
    ("POST", "/api/v1/tokens/"): EVERY_TENANT_ROLE,
    ("GET", "/api/v1/audit-events/"): ADMINS,
    ("GET", "/api/v1/uploads/"): UPLOADERS,
    ("POST", "/api/v1/uploads/"): UPLOADERS,
}
SUCCESS_STATUS = {"GET": 200, "POST": 201, "PATCH": 200}
TENANT_OF_KIND = {"clinic": "clinic_a", "hospital": "hospital_b"}

CASES = [
    pytest.param(TENANT_OF_KIND[kind], role, method, path, role in allowed, id=f"{role}-{method}-{path}")
    for kind, roles in ROLES_BY_KIND.items()
    for role in roles
    for (method, path), allowed in TENANT_ROUTE_ROLES.items()
]


def _body(method: str, path: str, tenant_key: str) -> dict | None:
    if (method, path) == ("POST", "/api/v1/users/"):
        return {"username": f"matrix-{unique_suffix()}", "role": "technologist" if tenant_key == "clinic_a" else "radiologist"}
    if method in {"POST", "PATCH"}:
        return {}
    return None


@pytest.mark.parametrize(("tenant_key", "role", "method", "path", "allowed"), CASES)
def test_each_route_admits_only_its_roles(platform, tenant_key, role, method, path, allowed):
    with platform.schema(tenant_key):
        own_id = User.objects.get(username=f"{role}-user").pk
    client = platform.http(tenant_key, role)
    answer = client.request(method, path.format(me=own_id), json=_body(method, path, tenant_key))
    if allowed:
        assert answer.status_code == SUCCESS_STATUS[method], answer.text
    else:
        assert answer.status_code == 403
        assert answer.json() == {"code": "permission_denied", "detail": "Your role may not do this."}


OPERATOR_ROUTES = [
    ("GET", "/api/v1/me/"),
    ("GET", "/api/v1/tenants/"),
    ("GET", "/api/v1/tenants/test-clinic-a/"),
    ("GET", "/api/v1/referral-links/"),
    ("GET", "/api/v1/users/"),
    ("GET", "/api/v1/tokens/"),
    ("GET", "/api/v1/audit-events/"),
]


@pytest.mark.parametrize(("method", "path"), OPERATOR_ROUTES)
def test_the_operator_is_admitted_to_the_platform_routes(platform, method, path):
    assert platform.operator_http().request(method, path).status_code == 200


def test_a_view_that_names_no_roles_admits_nobody():
    from rest_framework.generics import GenericAPIView

    from apps.accounts.permissions import HasAllowedRole

    class Unconfigured(GenericAPIView):
        pass

    operator = User(username="op", role="operator")
    request = type("Request", (), {"user": operator, "method": "GET"})()
    assert HasAllowedRole().has_permission(request, Unconfigured()) is False
