"""Thin Celery wrappers: render a film on the tenant's `film` queue; the periodic reconciliation of
films that stopped moving (in the public schema, every active tenant in turn)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.core.retries import DATABASE_ERRORS, OUTLAST_A_RESTART
from apps.films import services
from apps.storage.backends import StorageUnavailable
from tenants.context import tenant_entered
from tenants.selectors import tenants_active


@shared_task(name="apps.films.tasks.film_render_task", acks_late=True,
             autoretry_for=(*DATABASE_ERRORS, StorageUnavailable, ConnectionError), **OUTLAST_A_RESTART)
def film_render_task(film_id: int) -> str:
    return services.film_render(film_id=film_id)


@shared_task(name="apps.films.tasks.films_reconcile_task", acks_late=True)
def films_reconcile_task() -> dict[str, int]:
    moved = {"sent_again": 0, "failed": 0}
    for tenant in tenants_active():
        with tenant_entered(tenant):
            outcome = services.films_reconcile(stalled_seconds=settings.FILM_STALLED_SECONDS,
                                               give_up_seconds=settings.FILM_GIVE_UP_SECONDS)
        moved["sent_again"] += outcome.sent_again
        moved["failed"] += outcome.failed
    return moved
