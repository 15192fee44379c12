"""Email to a tenant's users through Django's email backend (console unless configured)."""

from __future__ import annotations

from django.core.mail import send_mail
from django.db import transaction

from apps.accounts.models import User
from tenants.context import tenant_entered
from tenants.models import Tenant


def users_email_on_commit(
    tenant: Tenant, *, subject: str, body: str, roles: frozenset[str] = frozenset(), usernames: tuple[str, ...] = ()
) -> None:
    """Email the active users of `tenant` holding one of `roles` (or named), once the transaction commits."""
    with tenant_entered(tenant):
        users = list(User.objects.filter(is_active=True).exclude(email=""))
    recipients = sorted({user.email for user in users if user.role in roles or user.username in usernames})
    if recipients:
        transaction.on_commit(lambda: send_mail(subject, body, None, recipients, fail_silently=True))
