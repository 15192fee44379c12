"""Mark studies stable once no new instance has arrived for a while, and announce it.

Run per tenant by the `studies_mark_stable` task, which the beat task `stable_studies_dispatch`
queues every few seconds for tenants that have a study due. Each study is marked in its own
transaction, under a row lock taken with SKIP LOCKED (an ingest updating the study holds that lock
and makes it unstable again anyway); the audit event and the subscribers run in that transaction.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.archive.events import StudyStable, study_stable_subscribers
from apps.archive.models import Study
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from tenants.context import current_tenant

_ARCHIVE_ACTOR = Actor.system("archive.stability")


def _due(stable_after_seconds: int):  # type: ignore[no-untyped-def]
    cutoff = timezone.now() - timedelta(seconds=stable_after_seconds)
    return Study.objects.filter(stable_at__isnull=True, deleted_at__isnull=True, last_instance_at__lte=cutoff)


def studies_due_for_stability(*, stable_after_seconds: int) -> bool:
    return _due(stable_after_seconds).exists()


def studies_mark_stable(*, stable_after_seconds: int, limit: int = 500) -> list[str]:
    """Mark every due study stable (at most `limit` a run); returns their Study Instance UIDs."""
    candidates = list(_due(stable_after_seconds).order_by("last_instance_at").values_list("id", flat=True)[:limit])
    marked: list[str] = []
    for study_id in candidates:
        with transaction.atomic():
            study = _due(stable_after_seconds).select_for_update(skip_locked=True).filter(pk=study_id).first()
            if study is None:
                continue  # changed or taken meanwhile
            study.stable_at = timezone.now()
            study.save(update_fields=["stable_at"])
            event = StudyStable(
                tenant_slug=current_tenant().slug,
                study_id=study.pk,
                study_instance_uid=study.study_instance_uid,
                patient_id=study.patient_id,
                modalities_in_study=tuple(study.modalities_in_study),
                number_of_series=study.number_of_series,
                number_of_instances=study.number_of_instances,
                stable_at=study.stable_at,
            )
            subscribers = study_stable_subscribers()
            audit_record(
                action=AuditAction.ARCHIVE_STUDY_STABLE, actor=_ARCHIVE_ACTOR, object_type="study",
                object_id=study.study_instance_uid,
                detail={"instances": study.number_of_instances, "series": study.number_of_series,
                        "subscribers": [name for name, _ in subscribers]},
            )
            for _, subscriber in subscribers:
                subscriber(event)
        marked.append(study.study_instance_uid)
    return marked
