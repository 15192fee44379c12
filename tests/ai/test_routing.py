"""Routing rules start jobs when a study becomes stable (the archive's study-stable event), on a
real worker; a study that matches no rule starts nothing."""

from __future__ import annotations

import time

from apps.ai import services
from apps.ai.models import AIJob, JobState, JobTrigger, RoutingRule
from apps.ai.services import routing as routing_services
from apps.archive.tasks import studies_mark_stable
from tenants.deployment import WorkKind
from tenants.queues import enqueue
from tests.ai.jobs_support import NODULE_ENGINE, store_chest_phantom, wait_for_job
from tests.support.platform import unique_suffix, wait_until

RULES = "/api/v1/ai/routing-rules/"


def make_studies_stable(platform, tenant_key: str) -> None:
    time.sleep(1.1)  # the quiet period below is 1 s
    with platform.schema():
        enqueue(studies_mark_stable.name, tenant=platform.tenants[tenant_key], work=WorkKind.INGEST,
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


def test_a_pattern_that_needs_backtracking_is_refused_when_the_rule_is_saved(platform):
    admin = platform.http("clinic_a", "clinic_admin")
    name = f"repeated word {unique_suffix()}"
    refused = admin.post(RULES, json={"name": name, "engine_name": NODULE_ENGINE,
                                      "study_description_pattern": r"(CT)\1"})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_routing_rule")
    assert refused.json()["detail"].startswith(r"study_description_pattern is not accepted: invalid escape sequence: \1")
    assert "back-references" in refused.json()["detail"]
    assert name not in [rule["name"] for rule in admin.get(RULES).json()["results"]]


def test_a_pattern_longer_than_the_cap_is_refused_when_the_rule_is_saved(platform):
    refused = platform.http("clinic_a", "clinic_admin").post(
        RULES, json={"name": "long", "engine_name": NODULE_ENGINE, "study_description_pattern": "x" * 201})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid")
    assert list(refused.json()["detail"]) == ["study_description_pattern"]


def test_a_rule_beyond_the_tenants_limit_is_refused(platform, monkeypatch):
    admin = platform.http("clinic_a", "clinic_admin")
    existing = len(admin.get(RULES).json()["results"])
    monkeypatch.setattr(routing_services, "MAX_ROUTING_RULES_PER_TENANT", existing + 1)
    created = admin.post(RULES, json={"name": "last one allowed", "engine_name": NODULE_ENGINE, "modality": "CT"})
    try:
        assert created.status_code == 201, created.text
        refused = admin.post(RULES, json={"name": "one too many", "engine_name": NODULE_ENGINE, "modality": "CT"})
        assert (refused.status_code, refused.json()["code"]) == (409, "routing_rules_limit")
    finally:
        admin.delete(f"{RULES}{created.json()['id']}/")


CHEST_CT = [{"series_instance_uid": "1.2.3", "modality": "CT", "body_part_examined": "CHEST", "images": 60}]


def test_a_catastrophic_pattern_is_evaluated_in_linear_time_on_the_shared_queue():
    rule = RoutingRule(name="evil", engine_name=NODULE_ENGINE, study_description_pattern="^(a+)+$")
    started = time.perf_counter()
    assert services._rule_matches(rule, "a" * 27 + "!", CHEST_CT) is False
    assert time.perf_counter() - started < 0.5


def test_stored_rules_match_as_before_and_one_re2_cannot_run_is_skipped():
    def rule(pattern: str) -> RoutingRule:
        return RoutingRule(name=pattern, engine_name=NODULE_ENGINE, study_description_pattern=pattern)

    assert services._rule_matches(rule(r"^ct\s+chest\Z"), "CT  Chest", CHEST_CT) is True
    assert services._rule_matches(rule("LUNG|CHEST"), "CT CHEST", CHEST_CT) is True
    assert services._rule_matches(rule("^chest"), "CT CHEST", CHEST_CT) is False
    # Saved before patterns were checked: look-ahead needs backtracking, so the rule matches nothing.
    assert services._rule_matches(rule("CT(?= CHEST)"), "CT CHEST", CHEST_CT) is False


def test_a_stored_rule_whose_pattern_re2_refuses_is_listed_with_the_reason(platform):
    with platform.schema("clinic_a"):
        legacy = RoutingRule.objects.create(name="saved before RE2", engine_name=NODULE_ENGINE,
                                            study_description_pattern="CT(?= CHEST)")
    admin = platform.http("clinic_a", "clinic_admin")
    try:
        listed = {rule["id"]: rule for rule in admin.get(RULES).json()["results"]}
    finally:
        assert admin.delete(f"{RULES}{legacy.pk}/").status_code == 204
    assert listed[legacy.pk]["study_description_pattern_error"].startswith("invalid perl operator: (?=")
