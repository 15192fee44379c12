"""A worker node that crashes while it runs an AI job: the job `running`, the run caught loading the
study's instances, the whole worker process group SIGKILLed. On the shared queue the lost job holds
the clinic's only in-flight place, so the clinic's next job waits. A new worker starts; once the
attempt has outlived the engine's time-out the beat's sweep sends the job again, it runs, and the
job behind it runs too. Real processes: private redis-server, web server, relay, beat and workers
(tests/support/faults.py)."""

from __future__ import annotations

from apps.ai.models import JobState
from apps.ai.services import engine_setting_update
from apps.audit.models import AuditEvent
from apps.audit.services import Actor
from tests.ai.jobs_support import JOBS, NODULE_ENGINE, job_of, store_chest_phantom, wait_for_job
from tests.support.faults import table_locked
from tests.support.platform import wait_until

# Short, so the lost attempt is found within seconds (plus AI_LOST_ATTEMPT_GRACE_SECONDS, 2 here),
# long enough for the detector's run on the small phantom.
ENGINE_TIMEOUT_SECONDS = 10


def start(platform, study_uid: str) -> str:
    response = platform.http("clinic_c", "technologist").post(JOBS, json={
        "engine_name": NODULE_ENGINE, "study_instance_uid": study_uid})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_an_ai_job_whose_worker_crashed_runs_again_and_frees_the_clinics_place(crash_platform):
    platform = crash_platform.platform
    crashed_study = store_chest_phantom(platform, "clinic_c", "technologist")
    waiting_study = store_chest_phantom(platform, "clinic_c", "technologist")
    with platform.schema("clinic_c"):
        engine_setting_update(engine_name=NODULE_ENGINE, actor=Actor.system("test"),
                              timeout_seconds=ENGINE_TIMEOUT_SECONDS)
    try:
        crash_platform.worker.freeze()  # the run message waits until the instances are locked
        try:
            crashed_id = start(platform, crashed_study.study_instance_uid)
            with table_locked(platform, "clinic_c", "archive_instance"):
                crash_platform.worker.thaw()
                wait_until(lambda: job_of(platform, "clinic_c", crashed_id).state == JobState.RUNNING, timeout=30,
                           message="the worker to start the AI job")
                crash_platform.crash_worker()
        finally:
            if crash_platform.worker.process.poll() is None:
                crash_platform.worker.thaw()
        waiting_id = start(platform, waiting_study.study_instance_uid)
        waiting = job_of(platform, "clinic_c", waiting_id)
        assert (waiting.state, waiting.dispatched_at) == (JobState.QUEUED, None)  # the lost job holds the place

        crash_platform.start_new_worker()
        rerun = wait_for_job(platform, "clinic_c", crashed_id, timeout=45)
        waited = wait_for_job(platform, "clinic_c", waiting_id, timeout=30)
    finally:
        with platform.schema("clinic_c"):
            engine_setting_update(engine_name=NODULE_ENGINE, actor=Actor.system("test"), timeout_seconds=600)
    assert (rerun.state, rerun.attempts, rerun.error_code) == (JobState.SUCCEEDED, 2, "")
    assert waited.state == JobState.SUCCEEDED
    with platform.schema("clinic_c"):
        assert AuditEvent.objects.filter(action="ai.job_resend", object_id=crashed_id).count() == 1
