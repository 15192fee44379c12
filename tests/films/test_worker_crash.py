"""A worker node that crashes while it renders a film: the film `running`, the render caught reading
the study's instances, the whole worker process group SIGKILLed. A new worker starts; the beat's
reconciliation sends the film again and it is ready within its bound. Real processes: private
redis-server, web server, relay, beat and workers (tests/support/faults.py)."""

from __future__ import annotations

from apps.audit.models import AuditEvent
from apps.films.models import Film, FilmState
from apps.storage.tenant_storage import storage_for
from tests.films.support import FILMS, clinic_study
from tests.support.faults import table_locked
from tests.support.platform import wait_until


def film_row(platform, film_id: int) -> Film:
    with platform.schema("clinic_a"):
        return Film.objects.get(pk=film_id)


def test_a_film_whose_worker_crashed_mid_render_is_ready_after_a_new_worker_starts(crash_platform):
    platform = crash_platform.platform
    study = clinic_study(platform, slices=6)
    crash_platform.worker.freeze()  # the render message waits until the instances are locked
    try:
        created = platform.http("clinic_a", "technologist").post(FILMS, json={
            "study_instance_uid": study.study_instance_uid, "layout": "2x2"})
        assert created.status_code == 201, created.text
        film_id = created.json()["id"]
        with table_locked(platform, "clinic_a", "archive_instance"):
            crash_platform.worker.thaw()
            wait_until(lambda: film_row(platform, film_id).state == FilmState.RUNNING, timeout=30,
                       message="the worker to start rendering the film")
            crash_platform.crash_worker()
    finally:
        if crash_platform.worker.process.poll() is None:
            crash_platform.worker.thaw()

    crash_platform.start_new_worker()
    film = wait_until(lambda: (row := film_row(platform, film_id)).state in (FilmState.READY, FilmState.FAILED)
                      and row, timeout=45, message="the crashed film to be rendered again")
    assert (film.state, film.error_detail, film.image_count) == (FilmState.READY, "", 1)
    assert storage_for(platform.tenants["clinic_a"]).exists(film.sheets_pdf_key)
    with platform.schema("clinic_a"):
        assert AuditEvent.objects.filter(action="film.render_resend", object_id=str(film_id)).exists()
