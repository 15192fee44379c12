"""The audit trail of reads: every request that shows patient data to a person is one event.

DESIGN §7: who (the actor, with the client address), what (study, series, instance, or the query),
when (the event time). One event per request, however many instances it returns.
"""

from __future__ import annotations

from typing import Any

from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record


def patient_data_read_record(
    *,
    actor: Actor,
    action: AuditAction,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    sop_instance_uid: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    if sop_instance_uid:
        object_type, object_id = "instance", sop_instance_uid
    elif series_instance_uid:
        object_type, object_id = "series", series_instance_uid
    elif study_instance_uid:
        object_type, object_id = "study", study_instance_uid
    else:
        object_type, object_id = "query", ""
    audit_record(
        action=action, actor=actor, object_type=object_type, object_id=object_id,
        detail={
            **({"study": study_instance_uid} if study_instance_uid else {}),
            **({"series": series_instance_uid} if series_instance_uid else {}),
            **({"instance": sop_instance_uid} if sop_instance_uid else {}),
            **(detail or {}),
        },
    )
