"""`Authorization: Bearer <token>` for the API and DICOMweb, checked in the current tenant's schema."""

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.services import token_authenticate


def bearer_secret(authorization_header: str) -> str | None:
    parts = authorization_header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        secret = bearer_secret(header)
        if secret is None:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        token = token_authenticate(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token for this tenant.")
        if token.study_instance_uid_scope:
            raise exceptions.AuthenticationFailed("This token reaches only DICOMweb, for one study.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="imaging-cloud"'
