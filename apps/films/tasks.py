"""Thin Celery wrapper: render a film on the tenant's `film` queue."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from apps.films import services
from apps.storage.backends import StorageUnavailable


@shared_task(name="apps.films.tasks.film_render_task", acks_late=True,
             autoretry_for=(OperationalError, StorageUnavailable, ConnectionError), retry_backoff=True,
             retry_backoff_max=300, max_retries=6)
def film_render_task(film_id: int) -> str:
    return services.film_render(film_id=film_id)
