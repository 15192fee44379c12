"""A film render that meets a database outage (about 10 s, this test database only: the shared
PostgreSQL server goes on): the film `running`, the render caught reading the study's instances when
every connection is ended and new ones refused. The render retries, and the film is ready within
its bound once the database is back. Real processes: private redis-server, web server, relay, beat
and worker (tests/support/faults.py)."""

from __future__ import annotations

import re

from apps.films.models import Film, FilmState
from apps.storage.tenant_storage import storage_for
from tests.films.support import FILMS, clinic_study
from tests.support.faults import database_out_for, table_locked
from tests.support.platform import wait_until

OUTAGE_SECONDS = 10
RENDER_RETRY = re.compile(r"film_render_task\[[0-9a-f-]+\] retry: .*(OperationalError|InterfaceError)")


def film_row(platform, film_id: int) -> Film:
    with platform.schema("clinic_a"):
        return Film.objects.get(pk=film_id)


def test_a_film_whose_render_met_a_database_outage_is_ready_after_it(crash_platform):
    platform = crash_platform.platform
    worker = crash_platform.worker
    study = clinic_study(platform, slices=6)
    worker.freeze()  # the render message waits until the instances are locked
    try:
        created = platform.http("clinic_a", "technologist").post(FILMS, json={
            "study_instance_uid": study.study_instance_uid, "layout": "2x2"})
        assert created.status_code == 201, created.text
        film_id = created.json()["id"]
        with table_locked(platform, "clinic_a", "archive_instance"):
            worker.thaw()
            wait_until(lambda: film_row(platform, film_id).state == FilmState.RUNNING, timeout=30,
                       message="the worker to start rendering the film")
            database_out_for(OUTAGE_SECONDS, worker=worker, until_retried=RENDER_RETRY)
    finally:
        worker.thaw()

    film = wait_until(lambda: (row := film_row(platform, film_id)).state in (FilmState.READY, FilmState.FAILED)
                      and row, timeout=45, message="the film to be rendered after the outage")
    assert (film.state, film.error_detail, film.image_count) == (FilmState.READY, "", 1)
    assert storage_for(platform.tenants["clinic_a"]).exists(film.sheets_pdf_key)
    assert worker.process.poll() is None, worker.log()
