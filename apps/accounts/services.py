"""Account use cases: create users, issue and revoke tokens. Each writes its audit event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken, User
from apps.accounts.roles import Role, roles_for_kind
from apps.accounts.selectors import token_with_user
from apps.accounts.tokens import display_prefix, hash_token, new_token_secret
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.errors import Conflict, InvalidInput, NotFound
from tenants.context import current_tenant_or_none


def current_tenant_kind() -> str:
    tenant = current_tenant_or_none()
    return getattr(tenant, "kind", "") or "public"


class WeakPassword(InvalidInput):
    """The password fails one of the AUTH_PASSWORD_VALIDATORS (too short, too common, all digits, ...)."""

    code = "weak_password"


def password_check(*, password: str, user: User) -> None:
    """Run Django's password validators, so every path that sets a password holds to the same rules."""
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as failure:
        raise WeakPassword(" ".join(failure.messages)) from failure


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str


def user_create(
    *,
    username: str,
    role: str,
    password: str | None = None,
    email: str = "",
    display_name: str = "",
    actor: Actor | None = None,
) -> User:
    """Create a user in the current tenant's schema with a role that fits the tenant's kind."""
    allowed = roles_for_kind(current_tenant_kind())
    if role not in {r.value for r in allowed}:
        raise InvalidInput(
            f"Role {role!r} does not exist in a {current_tenant_kind()} tenant; use one of "
            f"{sorted(r.value for r in allowed)}.",
            code="invalid_role",
        )
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict(f"User {username!r} already exists.", code="duplicate_user")
        user = User(username=username, role=role, email=email, display_name=display_name)
        if password:
            password_check(password=password, user=user)
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.is_staff = role in {Role.OPERATOR}
        user.save()
        audit_record(action=AuditAction.USER_CREATE, actor=actor, object_type="user", object_id=user.pk, detail={"role": role})
    return user


def user_set_role(*, user: User, role: str, actor: Actor | None = None) -> User:
    allowed = roles_for_kind(current_tenant_kind())
    if role not in {r.value for r in allowed}:
        raise InvalidInput(f"Role {role!r} does not exist in this tenant.", code="invalid_role")
    with transaction.atomic():
        previous = user.role
        user.role = role
        user.save(update_fields=["role"])
        audit_record(
            action=AuditAction.USER_ROLE_CHANGE, actor=actor, object_type="user", object_id=user.pk,
            detail={"from": previous, "to": role},
        )
    return user


def user_activate(*, user: User, actor: Actor | None = None) -> User:
    """Let a deactivated user sign in again. Tokens revoked at deactivation stay revoked."""
    with transaction.atomic():
        if not user.is_active:
            user.is_active = True
            user.save(update_fields=["is_active"])
            audit_record(action=AuditAction.USER_ACTIVATE, actor=actor, object_type="user", object_id=user.pk)
    return user


def user_deactivate(*, user: User, actor: Actor | None = None) -> User:
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        audit_record(action=AuditAction.USER_DEACTIVATE, actor=actor, object_type="user", object_id=user.pk)
    return user


def token_issue(
    *, user: User, name: str = "", lifetime: timedelta | None = None, actor: Actor | None = None,
    study_instance_uid_scope: str = "", from_session: bool = False,
) -> IssuedToken:
    """Issue a Bearer token. One asked for by a browser session (`from_session`) lives at most
    SESSION_TOKEN_MAX_LIFETIME, so a borrowed or hijacked session cannot mint a long-lived token."""
    secret = new_token_secret()
    lifetime = lifetime or settings.API_TOKEN_DEFAULT_LIFETIME
    if from_session:
        lifetime = min(lifetime, settings.SESSION_TOKEN_MAX_LIFETIME)
    expires_at: datetime | None = timezone.now() + lifetime
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, key_prefix=display_prefix(secret), key_hash=hash_token(secret), expires_at=expires_at,
            study_instance_uid_scope=study_instance_uid_scope,
        )
        audit_record(
            action=AuditAction.TOKEN_ISSUE, actor=actor or Actor.for_user(user), object_type="api_token", object_id=token.pk,
            detail={"user": user.username, "expires_at": expires_at.isoformat() if expires_at else None,
                    "study_scope": study_instance_uid_scope or None, "from_session": from_session},
        )
    return IssuedToken(token=token, secret=secret)


def token_revoke(*, token_id: int, actor: Actor | None = None) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise NotFound("No such token.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        audit_record(action=AuditAction.TOKEN_REVOKE, actor=actor, object_type="api_token", object_id=token.pk)
    return token


def token_authenticate(secret: str) -> ApiToken | None:
    """The usable token for this secret in the current schema, or None."""
    token = token_with_user(hash_token(secret))
    if token is None or not token.is_usable() or not token.user.is_active:
        return None
    now = timezone.now()
    # Write last use at most once a minute so a busy client does not write on every request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
