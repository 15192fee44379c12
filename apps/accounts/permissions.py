"""Deny by default: a view must name the roles it admits (`allowed_roles`), per method if needed."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.roles import Role


def allowed_roles_for(view: Any, method: str) -> frozenset[str] | None:
    by_method = getattr(view, "allowed_roles_by_method", None)
    if by_method and method in by_method:
        return frozenset(by_method[method])
    roles = getattr(view, "allowed_roles", None)
    return frozenset(roles) if roles is not None else None


class HasAllowedRole(BasePermission):
    message = "Your role may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            return False
        roles = allowed_roles_for(view, request.method or "GET")
        if roles is None:
            return False
        return getattr(user, "role", None) in roles


def is_operator(user: Any) -> bool:
    return getattr(user, "role", None) == Role.OPERATOR
