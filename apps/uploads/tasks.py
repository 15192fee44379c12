"""Thin Celery wrappers of the upload use cases. The `*_dispatch` task is periodic
(CELERY_BEAT_SCHEDULE), runs in the public schema and queues the per-tenant task for each active
tenant on its own ingest queue."""

import uuid

from celery import shared_task
from django.conf import settings

from apps.core.retries import DATABASE_ERRORS, OUTLAST_A_RESTART
from apps.storage.backends import StorageUnavailable
from apps.uploads import services
from tenants.context import tenant_entered
from tenants.deployment import WorkKind
from tenants.queues import enqueue_for_every_active_tenant
from tenants.selectors import tenants_active


@shared_task(name="apps.uploads.tasks.upload_session_process", acks_late=True,
             autoretry_for=(*DATABASE_ERRORS, StorageUnavailable, ConnectionError), **OUTLAST_A_RESTART)
def upload_session_process(session_id: str) -> None:
    services.upload_session_process(session_id=uuid.UUID(session_id))


@shared_task(name="apps.uploads.tasks.upload_sessions_expire", acks_late=True,
             autoretry_for=(*DATABASE_ERRORS, StorageUnavailable, ConnectionError), retry_backoff=True, max_retries=3)
def upload_sessions_expire(idle_seconds: int | None = None) -> int:
    seconds = settings.UPLOAD_SESSION_IDLE_EXPIRY_SECONDS if idle_seconds is None else idle_seconds
    return services.upload_sessions_expire(idle_seconds=seconds)


@shared_task(name="apps.uploads.tasks.upload_sessions_expire_dispatch", acks_late=True)
def upload_sessions_expire_dispatch() -> int:
    """Periodic: queue `upload_sessions_expire` for every active tenant."""
    return enqueue_for_every_active_tenant(upload_sessions_expire.name, work=WorkKind.INGEST)


@shared_task(name="apps.uploads.tasks.upload_sessions_resume_stalled", acks_late=True)
def upload_sessions_resume_stalled() -> int:
    """Periodic, in the public schema: resume every tenant's sessions stuck in `processing`."""
    resumed = 0
    for tenant in tenants_active():
        with tenant_entered(tenant):
            resumed += services.upload_sessions_resume_stalled(stalled_seconds=settings.UPLOAD_PROCESSING_STALLED_SECONDS)
    return resumed
