"""An AI job whose run meets a database outage (about 10 s, this test database only: the shared
PostgreSQL server goes on): the job `running`, the run caught loading the study's instances when
every connection is ended and new ones refused. The run cannot even put the job back in the queue
while the database is out, so its message retries until it can; once the database is back the job
runs again and succeeds, and the clinic's next job, held behind it by the in-flight cap, runs too.
The engine keeps its default 600 s time-out: the lost-attempt sweep would take ten minutes to help.
Real processes: private redis-server, web server, relay, beat and worker (tests/support/faults.py)."""

from __future__ import annotations

import re

from apps.ai.models import JobState
from tests.ai.jobs_support import JOBS, NODULE_ENGINE, job_of, store_chest_phantom, wait_for_job
from tests.support.faults import database_out_for, table_locked
from tests.support.platform import wait_until

OUTAGE_SECONDS = 10
RUN_RETRY = re.compile(r"ai_job_run\[[0-9a-f-]+\] retry: .*(OperationalError|InterfaceError)")


def start(platform, study_uid: str) -> str:
    response = platform.http("clinic_c", "technologist").post(JOBS, json={
        "engine_name": NODULE_ENGINE, "study_instance_uid": study_uid})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_an_ai_job_whose_run_met_a_database_outage_succeeds_after_it_and_frees_the_clinics_place(crash_platform):
    platform = crash_platform.platform
    worker = crash_platform.worker
    caught_study = store_chest_phantom(platform, "clinic_c", "technologist")
    waiting_study = store_chest_phantom(platform, "clinic_c", "technologist")
    worker.freeze()  # the run message waits until the instances are locked
    try:
        caught_id = start(platform, caught_study.study_instance_uid)
        waiting_id = start(platform, waiting_study.study_instance_uid)
        with table_locked(platform, "clinic_c", "archive_instance"):
            worker.thaw()
            wait_until(lambda: job_of(platform, "clinic_c", caught_id).state == JobState.RUNNING, timeout=30,
                       message="the worker to start the AI job")
            waiting = job_of(platform, "clinic_c", waiting_id)
            database_out_for(OUTAGE_SECONDS, worker=worker, until_retried=RUN_RETRY)
    finally:
        worker.thaw()
    assert (waiting.state, waiting.dispatched_at) == (JobState.QUEUED, None)  # the caught job holds the place

    caught = wait_for_job(platform, "clinic_c", caught_id, timeout=45)
    waited = wait_for_job(platform, "clinic_c", waiting_id, timeout=30)
    assert (caught.state, caught.attempts, caught.error_code) == (JobState.SUCCEEDED, 2, "")
    assert waited.state == JobState.SUCCEEDED
    assert worker.process.poll() is None, worker.log()
