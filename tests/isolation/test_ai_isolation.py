"""Isolation invariant for the AI endpoints: one tenant never sees, starts on, cancels or reads
another tenant's jobs, rules or studies."""

from __future__ import annotations

import pytest

from apps.ai.models import AIJob
from apps.ai.selectors import triage_flags_for_studies
from tests.ai.jobs_support import JOBS, NODULE_ENGINE
from tests.support.dicomweb import ct_study, stow

RULES = "/api/v1/ai/routing-rules/"


@pytest.fixture(scope="module")
def hospital_job(platform):
    """A job in hospital_b (it stays queued or runs: only its row matters here)."""
    study = ct_study(20, size=32)
    assert stow(platform.http("hospital_b", "radiologist"), study.files).status_code == 200
    with platform.schema("hospital_b"):
        job = AIJob.objects.create(engine_name=NODULE_ENGINE, engine_version="1.0.0", state="succeeded",
                                   study_instance_uid=study.study_instance_uid,
                                   summary={"triage": {"text": "1 nodule, largest 7 mm", "flag": True}})
    return study, job


def test_another_tenants_job_is_not_found(platform, hospital_job):
    _, job = hospital_job
    response = platform.http("clinic_a", "clinic_admin").get(f"{JOBS}{job.pk}/")
    assert response.status_code == 404


def test_another_tenants_job_is_not_listed(platform, hospital_job):
    _, job = hospital_job
    listed = platform.http("clinic_a", "clinic_admin").get(JOBS, params={"limit": 1000}).json()["results"]
    assert str(job.pk) not in [item["id"] for item in listed]


def test_another_tenants_job_cannot_be_cancelled(platform, hospital_job):
    _, job = hospital_job
    response = platform.http("clinic_a", "clinic_admin").post(f"{JOBS}{job.pk}/cancel/")
    assert (response.status_code, response.json()["code"]) == (404, "job_not_found")
    with platform.schema("hospital_b"):
        assert AIJob.objects.get(pk=job.pk).state == "succeeded"


def test_a_job_cannot_be_started_on_another_tenants_study(platform, hospital_job):
    study, _ = hospital_job
    response = platform.http("clinic_a", "technologist").post(
        JOBS, json={"engine_name": NODULE_ENGINE, "study_instance_uid": study.study_instance_uid})
    assert (response.status_code, response.json()["code"]) == (404, "study_not_found")


def test_another_tenants_routing_rules_are_neither_listed_nor_deletable(platform):
    rule = platform.http("hospital_b", "hospital_admin").post(
        RULES, json={"name": "isolation", "engine_name": NODULE_ENGINE, "modality": "MR"}).json()
    try:
        clinic = platform.http("clinic_a", "clinic_admin")
        assert rule["id"] not in [item["id"] for item in clinic.get(RULES).json()["results"]]
        assert clinic.delete(f"{RULES}{rule['id']}/").status_code == 404
    finally:
        assert platform.http("hospital_b", "hospital_admin").delete(f"{RULES}{rule['id']}/").status_code == 204


def test_triage_flags_come_only_from_the_current_tenants_jobs(platform, hospital_job):
    study, _ = hospital_job
    with platform.schema("clinic_a"):
        assert triage_flags_for_studies([study.study_instance_uid]) == {}
    with platform.schema("hospital_b"):
        assert triage_flags_for_studies([study.study_instance_uid])[study.study_instance_uid]["flag"] is True


def test_a_token_of_one_tenant_is_refused_on_anothers_ai_api(platform):
    token = platform.tokens[("hospital_b", "hospital_admin")]
    assert platform.http("clinic_a", token=token).get(JOBS).status_code == 401
