"""Routing rules start jobs when a study becomes stable (the archive's study-stable event), on a
real worker; a study that matches no rule starts nothing."""

from __future__ import annotations

import time

from apps.ai.models import AIJob, JobState, JobTrigger
from apps.archive.tasks import studies_mark_stable
from tenants.deployment import WorkKind
from tenants.queues import enqueue
from tests.ai.jobs_support import NODULE_ENGINE, store_chest_phantom, wait_for_job
from tests.support.platform import unique_suffix, wait_until

RULES = "/api/v1/ai/routing-rules/"


def make_studies_stable(platform, tenant_key: str) -> None:
    time.sleep(1.1)  # the quiet period below is 1 s
    with platform.schema():
        enqueue(studies_mark_stable, tenant=platform.tenants[tenant_key], work=WorkKind.INGEST,
                kwargs={"stable_after_seconds": 1})


def routed_jobs(platform, tenant_key: str, study_uid: str) -> list[AIJob]:
    with platform.schema(tenant_key):
        return list(AIJob.objects.filter(study_instance_uid=study_uid, trigger=JobTrigger.ROUTING))


def test_a_matching_rule_starts_the_engine_when_the_study_becomes_stable(platform, workers):
    marker = f"LUNG SCREEN {unique_suffix().upper()}"
    admin = platform.http("hospital_b", "hospital_admin")
    created = admin.post(RULES, json={"name": "lung screening", "engine_name": NODULE_ENGINE, "modality": "ct",
                                      "body_part": "CHEST", "study_description_pattern": f"^{marker}$"})
    assert created.status_code == 201, created.text
    assert (created.json()["modality"], created.json()["body_part"]) == ("CT", "CHEST")
    try:
        matching = store_chest_phantom(platform, "hospital_b", "radiologist", study_description=marker)
        other = store_chest_phantom(platform, "hospital_b", "radiologist", study_description=f"{marker} FOLLOW-UP")
        make_studies_stable(platform, "hospital_b")
        jobs = wait_until(lambda: routed_jobs(platform, "hospital_b", matching.study_instance_uid), timeout=60,
                          message="a job started by the routing rule")
        job = wait_for_job(platform, "hospital_b", str(jobs[0].pk))
        assert (job.state, job.routing_rule_id, job.engine_name) == (JobState.SUCCEEDED, created.json()["id"],
                                                                     NODULE_ENGINE)
        assert routed_jobs(platform, "hospital_b", other.study_instance_uid) == []
    finally:
        assert admin.delete(f"{RULES}{created.json()['id']}/").status_code == 204


def test_a_rule_is_listed_for_the_tenant_and_gone_once_deleted(platform):
    admin = platform.http("clinic_a", "clinic_admin")
    created = admin.post(RULES, json={"name": "any CT", "engine_name": NODULE_ENGINE, "modality": "CT"}).json()
    assert created["id"] in [rule["id"] for rule in admin.get(RULES).json()["results"]]
    assert admin.delete(f"{RULES}{created['id']}/").status_code == 204
    assert created["id"] not in [rule["id"] for rule in admin.get(RULES).json()["results"]]
    assert admin.delete(f"{RULES}{created['id']}/").status_code == 404
