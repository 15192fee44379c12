"""Delete studies and series: hidden at once (soft delete), purged after the retention window.

`study_delete` / `series_delete` mark rows deleted in one transaction (every query filters on
`deleted_at IS NULL`, so they vanish from QIDO-RS and WADO-RS immediately) and set `purge_after`.
`deleted_purge` — run by a periodic task — removes rows whose window has passed, then their objects.
Each writes its audit event in its transaction. Index writes take the archive lock (see
services.indexing), so a deletion never interleaves with an ingest into the same study.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.archive.keys import derived_prefix
from apps.archive.models import ArchiveUsage, Instance, Patient, Series, Study
from apps.archive.services.indexing import lock_usage
from apps.archive.services.storage_extras import rendered_cache_entries_forget
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.core.errors import NotFound
from apps.storage.backends import StorageUnavailable
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant

logger = logging.getLogger(__name__)


def _purge_time(now: datetime) -> datetime:
    return now + timedelta(days=settings.DELETE_RETENTION_DAYS)


def _lock_archive() -> None:
    with connection.cursor() as cursor:
        lock_usage(cursor)


def study_delete(*, study_instance_uid: str, actor: Actor) -> Study:
    """Hide a study and everything in it now; its objects are purged after DELETE_RETENTION_DAYS."""
    with transaction.atomic():
        _lock_archive()
        study = Study.objects.filter(study_instance_uid=study_instance_uid, deleted_at__isnull=True).first()
        if study is None:
            raise NotFound(f"No study {study_instance_uid}.", code="study_not_found")
        now = timezone.now()
        purge_after = _purge_time(now)
        instances = Instance.objects.filter(study=study, deleted_at__isnull=True).update(deleted_at=now)
        Series.objects.filter(study=study, deleted_at__isnull=True).update(deleted_at=now, purge_after=purge_after)
        study.deleted_at = now
        study.purge_after = purge_after
        study.save(update_fields=["deleted_at", "purge_after"])
        audit_record(
            action=AuditAction.ARCHIVE_STUDY_DELETE, actor=actor, object_type="study", object_id=study_instance_uid,
            detail={"instances": instances, "purge_after": purge_after.isoformat(), "patient_id": study.patient_id},
        )
    return study


def _recount_study(study: Study) -> None:
    """Counters and ModalitiesInStudy from the live series (under the archive lock, so exact)."""
    live = Series.objects.filter(study=study, deleted_at__isnull=True)
    totals = live.aggregate(series=Count("id"), instances=Sum("number_of_instances"), size=Sum("size_bytes"))
    study.number_of_series = totals["series"] or 0
    study.number_of_instances = totals["instances"] or 0
    study.size_bytes = totals["size"] or 0
    study.modalities_in_study = sorted({modality for modality in live.values_list("modality", flat=True) if modality})
    study.save(update_fields=["number_of_series", "number_of_instances", "size_bytes", "modalities_in_study"])


def series_delete(*, study_instance_uid: str, series_instance_uid: str, actor: Actor) -> Series:
    """Hide one series now (and its study, if it was the study's last series)."""
    with transaction.atomic():
        _lock_archive()
        series = (
            Series.objects.select_related("study")
            .filter(series_instance_uid=series_instance_uid, deleted_at__isnull=True,
                    study__study_instance_uid=study_instance_uid, study__deleted_at__isnull=True)
            .first()
        )
        if series is None:
            raise NotFound(f"No series {series_instance_uid} in study {study_instance_uid}.", code="series_not_found")
        now = timezone.now()
        purge_after = _purge_time(now)
        instances = Instance.objects.filter(series=series, deleted_at__isnull=True).update(deleted_at=now)
        series.deleted_at = now
        series.purge_after = purge_after
        series.save(update_fields=["deleted_at", "purge_after"])
        study = series.study
        _recount_study(study)
        study_deleted = study.number_of_series == 0
        if study_deleted:
            study.deleted_at = now
            study.purge_after = purge_after
            study.save(update_fields=["deleted_at", "purge_after"])
        audit_record(
            action=AuditAction.ARCHIVE_SERIES_DELETE, actor=actor, object_type="series", object_id=series_instance_uid,
            detail={"study": study_instance_uid, "instances": instances, "purge_after": purge_after.isoformat(),
                    "study_deleted": study_deleted},
        )
    return series


@dataclass(frozen=True)
class PurgeSummary:
    studies: int
    series: int
    instances: int
    bytes: int


def deleted_purge(*, now: datetime | None = None, batch_size: int = 2000) -> PurgeSummary:
    """Remove deleted rows whose retention window has passed, then their objects; safe to run again.

    Rows go first, in one transaction per batch; objects after the commit. A crash in between
    leaves objects that no row names any more: they are never served, only take space.
    """
    now = now or timezone.now()
    storage = storage_for(current_tenant())
    totals = [0, 0, 0, 0]
    while True:
        with transaction.atomic():
            _lock_archive()
            due_studies = list(
                Study.objects.filter(deleted_at__isnull=False, purge_after__lte=now).values_list("id", flat=True)[:batch_size]
            )
            due_series = list(
                Series.objects.filter(deleted_at__isnull=False, purge_after__lte=now).values_list("id", flat=True)[:batch_size]
            )
            if not due_studies and not due_series:
                break
            doomed = Instance.objects.filter(Q(study_id__in=due_studies) | Q(series_id__in=due_series))
            instances = list(doomed.values_list("object_key", "size_bytes"))
            doomed.delete()
            Series.objects.filter(Q(id__in=due_series) | Q(study_id__in=due_studies)).delete()
            patient_ids = list(Study.objects.filter(id__in=due_studies).values_list("patient_record_id", flat=True))
            Study.objects.filter(id__in=due_studies).delete()
            Patient.objects.filter(id__in=patient_ids, studies__isnull=True).delete()
            freed = sum(size for _, size in instances)
            # Their rendered images go with their derived folders below.
            rendered_cache_entries_forget(instance_object_keys=[key for key, _ in instances])
            ArchiveUsage.objects.filter(pk=1).update(
                stored_bytes=_decreased("stored_bytes", freed),
                stored_instances=_decreased("stored_instances", len(instances)),
            )
            audit_record(
                action=AuditAction.ARCHIVE_PURGE, actor=Actor.system("archive.purge"), object_type="archive",
                detail={"studies": len(due_studies), "series": len(due_series), "instances": len(instances),
                        "bytes": freed},
            )
        for key, _ in instances:
            try:
                storage.delete(key)
                storage.delete_prefix(derived_prefix(key))
            except (OSError, StorageUnavailable):
                logger.warning("Could not remove purged object %s", key, exc_info=True)
        totals = [totals[0] + len(due_studies), totals[1] + len(due_series), totals[2] + len(instances), totals[3] + freed]
    return PurgeSummary(studies=totals[0], series=totals[1], instances=totals[2], bytes=totals[3])


def _decreased(field: str, amount: int) -> Greatest:
    return Greatest(F(field) - Value(amount), Value(0))
