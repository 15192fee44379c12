"""The consult workflow's states and transitions, in one table.

    draft → submitted → accepted | rejected → assigned → in_reading → reported → finalized → delivered
    returned_for_info ⇄ submitted;  cancelled (by the clinic, before reading starts);
    amended (an addendum after finalization) → delivered again.

Every service that changes a consult's state asks `next_state` first; an action the current state
does not allow raises `InvalidTransition` (409, code `invalid_transition`) before anything changes.
"""

from __future__ import annotations

from apps.consult_routing.models import ConsultState as S
from apps.core.errors import Conflict

TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
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
}

# States in which the hospital may read the consult's studies (besides the grace after closing).
GRANT_STATES = frozenset({S.ACCEPTED, S.ASSIGNED, S.IN_READING, S.REPORTED, S.FINALIZED, S.AMENDED})
CLOSED_STATES = frozenset({S.DELIVERED, S.REJECTED, S.CANCELLED})
OPEN_STATES = frozenset(set(S.values) - CLOSED_STATES - {S.DRAFT})


class InvalidTransition(Conflict):
    code = "invalid_transition"


def next_state(current: str, action: str) -> str:
    """The state `action` leads to from `current`, or InvalidTransition."""
    allowed_from, target = TRANSITIONS[action]
    if current not in allowed_from:
        raise InvalidTransition(f"A consult that is {current} cannot {action.replace('_', ' ')}.")
    return target
