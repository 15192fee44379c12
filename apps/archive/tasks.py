"""Celery tasks of the archive: thin wrappers that load by ID, in the tenant's schema, and call a service.

Per-tenant tasks run in the schema of the tenant that queued them (tenant-schemas-celery). The two
`*_dispatch` tasks are periodic (CELERY_BEAT_SCHEDULE) and run in the public schema: they look at
each active tenant and queue the per-tenant task on that tenant's own ingest queue, so a dedicated
tenant's work runs on its own workers.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from apps.archive import retrieval, selectors, services
from apps.audit.services import Actor
from apps.core.retries import DATABASE_ERRORS, OUTLAST_A_RESTART
from apps.dicom.rendering import DEFAULT_THUMBNAIL_SIZE, RenderingNotPossible
from apps.dicom.transcode import VIDEO_TRANSFER_SYNTAXES
from apps.storage.backends import StorageUnavailable
from apps.storage.tenant_storage import storage_for
from tenants.context import current_tenant, tenant_entered
from tenants.deployment import WorkKind
from tenants.queues import enqueue, enqueue_for_every_active_tenant
from tenants.selectors import tenants_active

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (StorageUnavailable, *DATABASE_ERRORS, ConnectionError, TimeoutError)


@shared_task(
    name="apps.archive.tasks.study_derivatives_warm", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
    **OUTLAST_A_RESTART, soft_time_limit=300,
)
def study_derivatives_warm(study_id: int, series_ids: list[int]) -> int:
    """Render (once) the thumbnails of a study and of the series that just received instances.

    Idempotent: a thumbnail already cached is not rendered again; a study deleted meanwhile is skipped.
    """
    study_instance_uid = selectors.study_uid_of(study_id)
    if study_instance_uid is None:
        return 0
    storage = storage_for(current_tenant())
    targets = [selectors.representative_instance(study_instance_uid=study_instance_uid)]
    for _, series_instance_uid in selectors.series_thumbnail_candidates(study_id=study_id, series_ids=series_ids):
        targets.append(selectors.representative_instance(
            study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid
        ))
    rendered = 0
    for instance in {target.id: target for target in targets if target is not None}.values():
        if retrieval.thumbnail_is_cached(storage, instance, size=DEFAULT_THUMBNAIL_SIZE, media_type="image/jpeg"):
            continue
        try:
            retrieval.thumbnail(storage, instance, size=DEFAULT_THUMBNAIL_SIZE, media_type="image/jpeg")
        except (RenderingNotPossible, retrieval.InstanceUnreadable) as error:
            logger.info("No thumbnail for %s: %s", instance.sop_instance_uid, error)
            continue
        rendered += 1
    return rendered


@shared_task(
    name="apps.archive.tasks.study_rendered_warm", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
    **OUTLAST_A_RESTART, soft_time_limit=900,
)
def study_rendered_warm(study_id: int) -> int:
    """Render (once) every image of a stable study as a viewer's plain `/rendered` request asks for
    it (first frame, JPEG, the object's own window), so the first look at each is a cache hit.

    Idempotent: frames already cached are skipped; a study deleted meanwhile is skipped.
    """
    study_instance_uid = selectors.study_uid_of(study_id)
    if study_instance_uid is None:
        return 0
    storage = storage_for(current_tenant())
    options = retrieval.default_rendered_options()
    rendered = 0
    for instance in selectors.instances_for_retrieval(study_instance_uid=study_instance_uid):
        if not instance.has_pixels or instance.transfer_syntax_uid in VIDEO_TRANSFER_SYNTAXES:
            continue
        if retrieval.rendered_is_cached(storage, instance, options):
            continue
        try:
            retrieval.rendered(storage, instance, options)
        except (RenderingNotPossible, retrieval.InstanceUnreadable) as error:
            logger.info("No rendered frame for %s: %s", instance.sop_instance_uid, error)
            continue
        rendered += 1
    return rendered


@shared_task(name="apps.archive.tasks.rendered_cache_evict", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=True, max_retries=3, soft_time_limit=600)
def rendered_cache_evict() -> dict[str, int]:
    """Hold the tenant's rendered cache under RENDERED_CACHE_MAX_BYTES_PER_TENANT (least recently used first)."""
    evicted = services.rendered_cache_evict(max_bytes=settings.RENDERED_CACHE_MAX_BYTES_PER_TENANT)
    return {"entries": evicted.entries, "bytes": evicted.bytes}


@shared_task(name="apps.archive.tasks.studies_mark_stable", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=True, max_retries=3)
def studies_mark_stable(stable_after_seconds: int | None = None) -> list[str]:
    seconds = settings.STUDY_STABLE_SECONDS if stable_after_seconds is None else stable_after_seconds
    return services.studies_mark_stable(stable_after_seconds=seconds)


@shared_task(name="apps.archive.tasks.deleted_purge", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=True, max_retries=3)
def deleted_purge() -> dict[str, int]:
    summary = services.deleted_purge()
    return {"studies": summary.studies, "series": summary.series, "instances": summary.instances}


@shared_task(name="apps.archive.tasks.orphaned_objects_collect", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=True, max_retries=3, soft_time_limit=3600)
def orphaned_objects_collect() -> dict[str, int]:
    """Remove the tenant's stored objects no index row names, older than STORAGE_ORPHAN_MIN_AGE_SECONDS."""
    try:
        collected = services.orphaned_objects_collect(
            min_age_seconds=settings.STORAGE_ORPHAN_MIN_AGE_SECONDS,
            max_unreferenced_instances=settings.STORAGE_ORPHAN_MAX_UNREFERENCED_INSTANCES,
            actor=Actor.system("storage.orphans-collect"),
        )
    except services.StorageMaintenanceBusy:
        logger.info("Orphan collection skipped: a reindex of this tenant is running")
        return {"removed": 0, "bytes": 0}
    return {"removed": collected.removed, "bytes": collected.bytes_removed}


@shared_task(name="apps.archive.tasks.stable_studies_dispatch", acks_late=True)
def stable_studies_dispatch(stable_after_seconds: int | None = None) -> int:
    """Periodic: queue `studies_mark_stable` for every tenant with a study due (a cheap EXISTS each)."""
    seconds = settings.STUDY_STABLE_SECONDS if stable_after_seconds is None else stable_after_seconds
    queued = 0
    for tenant in tenants_active():
        with tenant_entered(tenant):
            due = services.studies_due_for_stability(stable_after_seconds=seconds)
        if due:
            enqueue(studies_mark_stable.name, tenant=tenant, work=WorkKind.INGEST, kwargs={"stable_after_seconds": seconds})
            queued += 1
    return queued


@shared_task(name="apps.archive.tasks.deleted_purge_dispatch", acks_late=True)
def deleted_purge_dispatch() -> int:
    """Periodic: queue `deleted_purge` for every active tenant."""
    return enqueue_for_every_active_tenant(deleted_purge.name, work=WorkKind.INGEST)


@shared_task(name="apps.archive.tasks.rendered_cache_evict_dispatch", acks_late=True)
def rendered_cache_evict_dispatch() -> int:
    """Periodic: queue `rendered_cache_evict` for every active tenant whose rendered cache is over its cap
    (a one-row read each): catches what the post-write trigger missed (a lost message, a lowered cap)."""
    cap = settings.RENDERED_CACHE_MAX_BYTES_PER_TENANT
    queued = 0
    for tenant in tenants_active():
        with tenant_entered(tenant):
            over = selectors.storage_usage().rendered_cache_bytes > cap
        if over:
            enqueue(rendered_cache_evict.name, tenant=tenant, work=WorkKind.INGEST)
            queued += 1
    return queued


@shared_task(name="apps.archive.tasks.orphaned_objects_collect_dispatch", acks_late=True)
def orphaned_objects_collect_dispatch() -> int:
    """Periodic: queue `orphaned_objects_collect` for every active tenant, on its own ingest queue."""
    return enqueue_for_every_active_tenant(orphaned_objects_collect.name, work=WorkKind.INGEST)
