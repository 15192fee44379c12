"""The one helper that writes audit events. Call it inside the transaction of the change it records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.audit.models import AuditEvent, Outcome
from apps.core.rows import insert_row
from tenants.context import current_tenant_or_none


@dataclass(frozen=True)
class Actor:
    """Who did something: a user, a link holder, or the system (a task, a command).

    A plain value: built once at the edge (a view or API class from its request, a task or command
    by name) and handed to services, which never see the request. For a user it names the user (id
    and username), the role they acted in, the tenant they signed in to (a hospital user reading a
    clinic's archive through a consult is still the hospital's) and the client address.
    """

    kind: str = "system"
    identifier: str = ""
    name: str = "system"
    client_ip: str | None = None
    role: str = ""
    tenant_slug: str = ""

    @classmethod
    def for_user(cls, user: Any, client_ip: str | None = None, tenant_slug: str = "") -> Actor:
        return cls(kind="user", identifier=str(user.pk), name=user.username, client_ip=client_ip,
                   role=getattr(user, "role", "") or "", tenant_slug=tenant_slug)

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        from apps.core.requests import client_ip

        user = getattr(request, "user", None)
        address = client_ip(request)
        if user is not None and getattr(user, "is_authenticated", False):
            return cls.for_user(user, client_ip=address, tenant_slug=getattr(getattr(request, "tenant", None), "slug", ""))
        return cls(kind="anonymous", name="anonymous", client_ip=address)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(kind="system", name=name)


def audit_record(
    *,
    action: str,
    actor: Actor | None = None,
    object_type: str = "",
    object_id: Any = "",
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
    tenant_slug: str | None = None,
) -> int:
    """Append one event to the current schema's audit trail and return its id (one plain INSERT:
    reads of patient data write one on every request, see apps.core.rows)."""
    actor = actor or Actor.system()
    tenant = current_tenant_or_none()
    slug = tenant_slug or getattr(tenant, "slug", None) or "public"
    return int(insert_row(AuditEvent, dict(
        occurred_at=timezone.now(),
        tenant_slug=slug,
        actor_type=actor.kind,
        actor_id=actor.identifier,
        actor_name=actor.name,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        client_ip=actor.client_ip,
        outcome=outcome,
        detail=detail or {},
    )))
