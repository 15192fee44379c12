"""The consult workflow's states and transitions, in one table.

    draft → submitted → accepted | rejected → assigned → in_reading → reported → finalized → delivered
    returned_for_info ⇄ submitted;  cancelled (by the clinic, before reading starts);
    amended (an addendum after finalization) → delivered again.

Every service that changes a consult's state moves it through `CONSULT_WORKFLOW` (apps.core.workflow,
docs/architecture.md "The workflow mechanism"); an action the current state does not allow raises
`InvalidTransition` (409, code `invalid_transition`) before anything changes. Each action writes the
audit action `consult.<action>` (`CONSULT_AUDIT_ACTIONS`).
"""

from __future__ import annotations

from apps.audit.actions import AuditAction
from apps.consult_routing.models import ConsultState as S
from apps.consults.models import WebhookDeliveryStatus
from apps.core.workflow import InvalidTransition, TransitionTable

__all__ = ["CLOSED_STATES", "CONSULT_AUDIT_ACTIONS", "CONSULT_WORKFLOW", "GRANT_STATES", "OPEN_STATES",
           "WEBHOOK_DELIVERY_WORKFLOW", "InvalidTransition", "next_state"]

CONSULT_WORKFLOW = TransitionTable(entity="consult", field="state", transitions={
    "submit": (frozenset({S.DRAFT, S.RETURNED_FOR_INFO}), S.SUBMITTED),
    "cancel": (frozenset({S.DRAFT, S.SUBMITTED, S.RETURNED_FOR_INFO, S.ACCEPTED, S.ASSIGNED}), S.CANCELLED),
    "accept": (frozenset({S.SUBMITTED}), S.ACCEPTED),
    "reject": (frozenset({S.SUBMITTED}), S.REJECTED),
    "return_for_info": (frozenset({S.SUBMITTED, S.ACCEPTED, S.ASSIGNED, S.IN_READING}), S.RETURNED_FOR_INFO),
    "assign": (frozenset({S.ACCEPTED, S.ASSIGNED}), S.ASSIGNED),
    "claim": (frozenset({S.ACCEPTED, S.ASSIGNED}), S.IN_READING),
    "save_draft": (frozenset({S.IN_READING, S.REPORTED}), S.IN_READING),
    "report_preliminary": (frozenset({S.IN_READING}), S.REPORTED),
    "sign": (frozenset({S.IN_READING, S.REPORTED}), S.FINALIZED),
    "deliver": (frozenset({S.FINALIZED, S.AMENDED}), S.DELIVERED),
    "amend": (frozenset({S.FINALIZED, S.DELIVERED}), S.AMENDED),
})

CONSULT_AUDIT_ACTIONS: dict[str, AuditAction] = {
    event: AuditAction(f"consult.{event}") for event in CONSULT_WORKFLOW.events
}

# States in which the hospital may read the consult's studies (besides the grace after closing).
GRANT_STATES = frozenset({S.ACCEPTED, S.ASSIGNED, S.IN_READING, S.REPORTED, S.FINALIZED, S.AMENDED})
CLOSED_STATES = frozenset({S.DELIVERED, S.REJECTED, S.CANCELLED})
OPEN_STATES = frozenset(set(S.values) - CLOSED_STATES - {S.DRAFT})


def next_state(current: str, action: str) -> str:
    """The state `action` leads to from `current`, or InvalidTransition (asked before a move's side work)."""
    return CONSULT_WORKFLOW.target(current, action)


# A webhook delivery: pending (attempts counted on the row) → succeeded | failed (refused, or attempts used up).
WEBHOOK_DELIVERY_WORKFLOW = TransitionTable(entity="webhook delivery", field="status", transitions={
    "succeed": ({WebhookDeliveryStatus.PENDING}, WebhookDeliveryStatus.SUCCEEDED),
    "fail": ({WebhookDeliveryStatus.PENDING}, WebhookDeliveryStatus.FAILED),
})
