"""The one helper that writes audit events. Call it inside the transaction of the change it records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.audit.actions import AuditAction
from apps.audit.models import AuditEvent, Outcome
from apps.core.rows import insert_row
from apps.core.workflow import Move, TransitionTable, move
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
    action: AuditAction,
    actor: Actor | None = None,
    object_type: str = "",
    object_id: Any = "",
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
    tenant_slug: str | None = None,
) -> int:
    """Append one event to the current schema's audit trail and return its id (one plain INSERT:
    reads of patient data write one on every request, see apps.core.rows).

    An action that is not an `AuditAction` raises ValueError: the trail names only known actions."""
    action = AuditAction(action)
    actor = actor or Actor.system()
    tenant = current_tenant_or_none()
    slug = tenant_slug or getattr(tenant, "slug", None) or "public"
    return int(insert_row(AuditEvent, dict(
        occurred_at=timezone.now(),
        tenant_slug=slug,
        actor_type=actor.kind,
        actor_id=actor.identifier,
        actor_name=actor.name,
        action=action.value,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        client_ip=actor.client_ip,
        outcome=outcome,
        detail=detail or {},
    )))


def audited_move(
    entity: Any, table: TransitionTable, event: str, *, actor: Actor, action: AuditAction, object_type: str,
    object_id: Any = None, outcome: str = Outcome.SUCCESS, detail: dict[str, Any] | None = None, **fields: Any,
) -> Move:
    """Move `entity` by `event` (apps.core.workflow.move) and write its audit row in the same transaction.

    The row names `object_id` (the entity's own key unless given); its detail is `detail` as given:
    callers name what the event is about (a reason, a version)."""

    def record(moved: Move) -> None:
        audit_record(action=action, actor=actor, object_type=object_type,
                     object_id=moved.entity.pk if object_id is None else object_id, outcome=outcome, detail=detail)

    return move(entity, table, event, record=record, **fields)
