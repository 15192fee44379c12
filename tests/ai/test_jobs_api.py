"""The AI API's answers to bad input, roles, the engine registry, quotas and fair share.

Jobs started here may run on the session's workers; these tests assert what the API answers and
what the services decide, not what a worker later does."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.ai import services
from apps.ai.models import AIJob, JobState
from apps.audit.services import Actor
from apps.core.errors import InvalidInput
from tenants.models import Plan
from tests.ai.jobs_support import JOBS, NODULE_ENGINE, store_chest_phantom
from tests.support.dicomweb import ct_study, stow
from tests.support.platform import unique_suffix

ENGINES = "/api/v1/ai/engines/"
RULES = "/api/v1/ai/routing-rules/"


@pytest.fixture(scope="module")
def clinic_phantom(platform):
    return store_chest_phantom(platform, "clinic_a", "technologist")


def start(http, study_uid: str, engine: str = NODULE_ENGINE, **extra):
    return http.post(JOBS, json={"engine_name": engine, "study_instance_uid": study_uid, **extra})


def test_the_engine_list_shows_the_built_in_detector_with_what_it_accepts_and_its_enablement(platform):
    response = platform.http("clinic_a", "referring_physician").get(ENGINES)
    assert response.status_code == 200
    engine = next(item for item in response.json()["results"] if item["name"] == NODULE_ENGINE)
    assert engine["version"] == "1.0.0"
    assert engine["kind"] == "built_in"
    assert engine["enabled"] is True
    assert engine["accepts"]["modalities"] == ["CT"]
    assert engine["accepts"]["minimum_slices"] == 20
    assert engine["outputs"] == ["SEG", "SR", "JSON"]


def test_only_an_admin_may_disable_an_engine(platform):
    response = platform.http("clinic_a", "technologist").patch(f"{ENGINES}{NODULE_ENGINE}/", json={"enabled": False})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_disabled_engine_refuses_new_jobs_with_a_conflict(platform, clinic_phantom):
    admin = platform.http("clinic_a", "clinic_admin")
    assert admin.patch(f"{ENGINES}{NODULE_ENGINE}/", json={"enabled": False}).json()["enabled"] is False
    try:
        response = start(platform.http("clinic_a", "technologist"), clinic_phantom.study_instance_uid)
    finally:
        admin.patch(f"{ENGINES}{NODULE_ENGINE}/", json={"enabled": True})
    assert response.status_code == 409
    assert response.json()["code"] == "engine_disabled"


def test_an_unknown_engine_is_not_found(platform, clinic_phantom):
    response = start(platform.http("clinic_a", "technologist"), clinic_phantom.study_instance_uid, engine="no-such")
    assert (response.status_code, response.json()["code"]) == (404, "engine_not_found")


def test_an_unknown_study_is_not_found(platform):
    response = start(platform.http("clinic_a", "technologist"), "1.2.3.4.5.6.7.8.404")
    assert (response.status_code, response.json()["code"]) == (404, "study_not_found")


def test_a_malformed_study_uid_is_refused_as_invalid(platform):
    response = start(platform.http("clinic_a", "technologist"), "not-a-uid")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "study_instance_uid" in response.json()["detail"]


def test_a_study_too_short_for_the_engine_is_refused_with_the_reason(platform):
    study = ct_study(3)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    response = start(platform.http("clinic_a", "technologist"), study.study_instance_uid)
    assert response.status_code == 422
    assert response.json()["code"] == "study_not_accepted"
    assert "3 images, fewer than 20" in response.json()["detail"]


def test_a_referring_physician_may_not_start_jobs(platform, clinic_phantom):
    response = start(platform.http("clinic_a", "referring_physician"), clinic_phantom.study_instance_uid)
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_an_unauthenticated_request_is_refused(platform):
    assert platform.http("clinic_a").get(JOBS).status_code == 401


def test_an_unknown_job_is_not_found(platform):
    http = platform.http("clinic_a", "technologist")
    assert http.get(f"{JOBS}{uuid.uuid4()}/").status_code == 404
    response = http.post(f"{JOBS}{uuid.uuid4()}/cancel/")
    assert (response.status_code, response.json()["code"]) == (404, "job_not_found")


def test_a_repeated_idempotency_key_returns_the_first_job(platform, clinic_phantom):
    http = platform.http("clinic_a", "technologist")
    key = f"ai-{unique_suffix()}"
    first = start(http, clinic_phantom.study_instance_uid, forced=True, headers={"Idempotency-Key": key})
    second = start(http, clinic_phantom.study_instance_uid, forced=True, headers={"Idempotency-Key": key})
    assert first.status_code in (200, 201)
    assert (second.status_code, second.json()["id"], second.json()["reused"]) == (200, first.json()["id"], True)


def test_a_public_cloud_tenant_over_its_monthly_ai_quota_is_refused(platform):
    study = ct_study(20, size=32)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    with platform.schema():
        tenant = platform.tenants["clinic_a"]
        tenant.refresh_from_db()
        original_plan = tenant.plan
        plan = Plan.objects.create(code=f"ai-quota-{unique_suffix()}", name="AI quota test", ai_jobs_per_month_quota=0)
        tenant.plan = plan
        tenant.save(update_fields=["plan"])
    try:
        response = start(platform.http("clinic_a", "technologist"), study.study_instance_uid)
    finally:
        with platform.schema():
            tenant.plan = original_plan
            tenant.save(update_fields=["plan"])
    assert (response.status_code, response.json()["code"]) == (429, "ai_quota_exceeded")


def _job_row(state: str) -> AIJob:
    return AIJob.objects.create(engine_name=NODULE_ENGINE, engine_version="1.0.0", state=state,
                                study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int % 10**20}")


def test_a_public_cloud_tenant_at_its_running_cap_has_its_next_job_deferred(platform):
    with platform.schema("clinic_c"):
        running, queued = _job_row(JobState.RUNNING), _job_row(JobState.QUEUED)
        try:
            outcome = services.job_run(job_id=queued.pk)
            queued.refresh_from_db()
        finally:
            AIJob.objects.filter(pk__in=[running.pk, queued.pk]).update(state=JobState.CANCELLED)
    assert (outcome, queued.state, queued.attempts) == ("deferred", JobState.QUEUED, 0)


def test_a_dedicated_tenant_on_its_own_queue_is_not_capped(platform):
    with platform.schema("hospital_b"):
        running, queued = _job_row(JobState.RUNNING), _job_row(JobState.QUEUED)
        try:
            outcome = services.job_run(job_id=queued.pk)
            queued.refresh_from_db()
        finally:
            AIJob.objects.filter(pk=running.pk).update(state=JobState.CANCELLED)
    # Claimed and run: the made-up study has no series, so it fails for that reason, not a deferral.
    assert (outcome, queued.state, queued.error_code) == ("failed", JobState.FAILED, "no_suitable_series")


def test_running_a_job_twice_runs_it_once(platform):
    with platform.schema("hospital_b"):
        job = _job_row(JobState.QUEUED)
        first = services.job_run(job_id=job.pk)
        second = services.job_run(job_id=job.pk)
        job.refresh_from_db()
    assert (first, second, job.attempts) == ("failed", "skipped", 1)


def test_an_invalid_onnx_definition_is_refused_with_the_reason(platform):
    with platform.schema("hospital_b"), pytest.raises(InvalidInput) as refused:
        services.engine_define(engine_name="half-defined", kind="onnx", actor=Actor.system("test"),
                               definition={"version": "1", "model_path": "/models/x.onnx"})
    assert refused.value.code == "engine_definition_invalid"
    assert "window" in refused.value.detail


def test_a_routing_rule_with_a_bad_pattern_is_refused(platform):
    response = platform.http("clinic_a", "clinic_admin").post(RULES, json={
        "name": "bad", "engine_name": NODULE_ENGINE, "study_description_pattern": "(unclosed"})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_routing_rule")


def test_a_routing_rule_for_an_unknown_engine_is_refused(platform):
    response = platform.http("clinic_a", "clinic_admin").post(RULES, json={"name": "x", "engine_name": "no-such"})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_routing_rule")


def test_only_an_admin_may_create_routing_rules(platform):
    response = platform.http("clinic_a", "technologist").post(RULES, json={"name": "x", "engine_name": NODULE_ENGINE})
    assert response.status_code == 403


def test_a_public_cloud_tenant_has_only_its_cap_of_jobs_sent_to_the_shared_queue(platform):
    with platform.schema("clinic_c"):
        waiting = [_job_row(JobState.QUEUED) for _ in range(3)]
        try:
            sent = services.jobs_dispatch(tenant=platform.tenants["clinic_c"])
        finally:
            AIJob.objects.filter(pk__in=[job.pk for job in waiting]).update(state=JobState.CANCELLED)
    assert sent == services.max_running_jobs_per_tenant() == 1


def test_a_dedicated_tenant_has_all_its_queued_jobs_sent_to_its_own_queue(platform):
    with platform.schema("hospital_b"):
        waiting = [_job_row(JobState.QUEUED) for _ in range(3)]
        try:
            sent = services.jobs_dispatch(tenant=platform.tenants["hospital_b"])
        finally:
            AIJob.objects.filter(pk__in=[job.pk for job in waiting]).update(state=JobState.CANCELLED)
    assert sent == 3


def test_a_job_whose_worker_was_lost_is_run_again_by_the_redelivered_message(platform):
    with platform.schema("hospital_b"):
        job = _job_row(JobState.RUNNING)
        AIJob.objects.filter(pk=job.pk).update(attempts=1, started_at=timezone.now() - timedelta(hours=1))
        outcome = services.job_run(job_id=job.pk)
        job.refresh_from_db()
    # Run again (attempt 2); the made-up study has no series, so that attempt fails for that reason.
    assert (outcome, job.attempts, job.error_code) == ("failed", 2, "no_suitable_series")


def test_a_job_running_within_its_time_out_is_not_run_twice(platform):
    with platform.schema("hospital_b"):
        job = _job_row(JobState.RUNNING)
        AIJob.objects.filter(pk=job.pk).update(attempts=1, started_at=timezone.now())
        try:
            outcome = services.job_run(job_id=job.pk)
            job.refresh_from_db()
        finally:
            AIJob.objects.filter(pk=job.pk).update(state=JobState.CANCELLED)
    assert (outcome, job.state, job.attempts) == ("skipped", JobState.RUNNING, 1)


def test_a_transient_fault_puts_the_job_back_in_the_queue_until_its_attempts_are_used_up(platform):
    with platform.schema("hospital_b"):
        job = _job_row(JobState.RUNNING)
        try:
            AIJob.objects.filter(pk=job.pk).update(attempts=1)
            first = services.job_requeue_after_transient_fault(job_id=job.pk, detail="storage unavailable")
            state_after_first = AIJob.objects.get(pk=job.pk).state
            AIJob.objects.filter(pk=job.pk).update(state=JobState.RUNNING, attempts=services.max_attempts())
            last = services.job_requeue_after_transient_fault(job_id=job.pk, detail="storage unavailable")
        finally:
            AIJob.objects.filter(pk=job.pk).update(state=JobState.CANCELLED)
    assert (first, state_after_first, last) == (True, JobState.QUEUED, False)


def test_a_callback_with_an_unknown_status_is_refused_as_invalid(platform):
    with platform.schema("hospital_b"):
        job = _job_row(JobState.RUNNING)
        AIJob.objects.filter(pk=job.pk).update(callback_secret_hash=hashlib.sha256(b"the-callback-token").hexdigest())
    try:
        response = platform.http("hospital_b").post(f"{JOBS}{job.pk}/callback/", json={"status": "done"},
                                                    headers={"Authorization": "Bearer the-callback-token"})
    finally:
        with platform.schema("hospital_b"):
            AIJob.objects.filter(pk=job.pk).update(state=JobState.CANCELLED)
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "status" in response.json()["detail"]


def test_a_callback_for_an_unknown_job_is_refused_before_its_body_is_read(platform):
    response = platform.http("hospital_b").post(f"{JOBS}{uuid.uuid4()}/callback/", data=b"{not json",
                                                headers={"Authorization": "Bearer whatever",
                                                         "Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (403, "callback_refused")


def test_a_callback_without_a_token_is_refused(platform):
    response = platform.http("hospital_b").post(f"{JOBS}{uuid.uuid4()}/callback/", json={"status": "failed"})
    assert (response.status_code, response.json()["code"]) == (403, "callback_refused")
