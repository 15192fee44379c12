"""A film that stopped moving (its render message lost, its worker gone) is rendered again by the
periodic reconciliation, or failed with a reason once it is too old: no film stays `queued`."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.films.models import Film, FilmState
from apps.films.services import films_reconcile
from apps.films.tasks import films_reconcile_task
from tests.films.support import clinic_study, wait_for_film


def stalled_film(platform, study_uid: str, *, age_seconds: int, state: str = FilmState.QUEUED) -> Film:
    """A film row as a lost message leaves it: requested long ago, no task anywhere."""
    with platform.schema("clinic_a"):
        film = Film.objects.create(study_instance_uid=study_uid, layout="1x1", requested_by="test", state=state)
        Film.objects.filter(pk=film.pk).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return film


def test_a_film_whose_render_message_was_lost_is_rendered_by_the_sweep(platform, workers):
    study = clinic_study(platform, slices=3)
    film = stalled_film(platform, study.study_instance_uid, age_seconds=600)
    with platform.schema():
        assert films_reconcile_task()["sent_again"] >= 1
    assert wait_for_film(platform, film.pk)["state"] == "ready"
    with platform.schema("clinic_a"):
        assert AuditEvent.objects.filter(action="film.render_resend", object_id=str(film.pk)).count() == 1


def test_a_film_left_running_by_a_lost_worker_is_rendered_again(platform, workers):
    study = clinic_study(platform, slices=3)
    film = stalled_film(platform, study.study_instance_uid, age_seconds=600, state=FilmState.RUNNING)
    with platform.schema():
        films_reconcile_task()
    assert wait_for_film(platform, film.pk)["state"] == "ready"


def test_a_film_stalled_past_the_give_up_time_fails_with_a_reason_the_clinic_sees(platform):
    film = stalled_film(platform, "1.2.826.0.1.3680043.8.498.4242", age_seconds=7200)
    with platform.schema("clinic_a"):
        outcome = films_reconcile(stalled_seconds=300, give_up_seconds=3600)
        film.refresh_from_db()
    assert outcome.failed >= 1
    assert film.state == FilmState.FAILED
    assert film.error_detail == "The film was not rendered in time; request it again."


def test_a_recent_film_is_left_alone(platform):
    film = stalled_film(platform, "1.2.826.0.1.3680043.8.498.4343", age_seconds=10)
    with platform.schema("clinic_a"):
        films_reconcile(stalled_seconds=300, give_up_seconds=3600)
        film.refresh_from_db()
        Film.objects.filter(pk=film.pk).delete()
    assert film.state == FilmState.QUEUED
