"""Who may take each consult action: the one table the REST API, the pages and the services read
(docs/consults.md "Roles"). A role missing from an action's set gets 403 on the API and no button on
the page; the consult's state then decides whether the action may run (apps/consults/state_machine.py)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from apps.accounts.roles import CLINIC_ROLES, Role


class ConsultAction(StrEnum):
    """The steps of a consult a user takes; the values are the REST API's action names
    (`POST /consults/{id}/{action}/`), but for CREATE (`POST /consults/`), ATTACH (`POST …/attachments/`) and
    JUDGE_AI_FINDING (`POST …/ai-findings/{job}/{tracking_uid}/verdict/`)."""

    CREATE = "create"
    SUBMIT = "submit"
    CANCEL = "cancel"
    PROVIDE_INFO = "provide-info"
    ATTACH = "attach"
    ACCEPT = "accept"
    REJECT = "reject"
    ASSIGN = "assign"
    RETURN_FOR_INFO = "return-for-info"
    RETRY_DELIVERY = "retry-delivery"
    CLAIM = "claim"
    REPORT = "report"
    SIGN = "sign"
    AMEND = "amend"
    JUDGE_AI_FINDING = "judge-ai-finding"


#: Hospital roles that triage consults (accept, reject, assign, return for information, deliver again).
COORDINATOR_ROLES: Final = frozenset({Role.CONSULT_COORDINATOR, Role.HOSPITAL_ADMIN})
#: Roles that claim, report and sign.
READER_ROLES: Final = frozenset({Role.RADIOLOGIST})

ROLES_BY_ACTION: Final[dict[ConsultAction, frozenset[Role]]] = {
    ConsultAction.CREATE: CLINIC_ROLES,
    ConsultAction.SUBMIT: CLINIC_ROLES,
    ConsultAction.CANCEL: CLINIC_ROLES,
    ConsultAction.PROVIDE_INFO: CLINIC_ROLES,
    ConsultAction.ATTACH: CLINIC_ROLES,
    ConsultAction.ACCEPT: COORDINATOR_ROLES,
    ConsultAction.REJECT: COORDINATOR_ROLES,
    ConsultAction.ASSIGN: COORDINATOR_ROLES,
    ConsultAction.RETURN_FOR_INFO: COORDINATOR_ROLES | READER_ROLES,
    ConsultAction.RETRY_DELIVERY: COORDINATOR_ROLES,
    ConsultAction.CLAIM: READER_ROLES,
    ConsultAction.REPORT: READER_ROLES,
    ConsultAction.SIGN: READER_ROLES,
    ConsultAction.AMEND: READER_ROLES,
    ConsultAction.JUDGE_AI_FINDING: READER_ROLES,
}


def role_may(role: str, action: ConsultAction) -> bool:
    """Whether a user of this role may take the action (its state may still forbid it)."""
    return role in ROLES_BY_ACTION[action]


def actions_for_role(role: str) -> frozenset[ConsultAction]:
    """What the pages offer a user of this role (each button still checks the consult's state)."""
    return frozenset(action for action, roles in ROLES_BY_ACTION.items() if role in roles)
