"""The hospital radiologist's verdicts on the AI findings of a consult's study (docs/ai.md "Verdicts
on AI findings"): a real nodule job in the clinic, run by the session's workers, read through the
consult's grant; verdicts stored in the hospital, audited in both tenants, frozen at signing, counted
per engine."""

from __future__ import annotations

import re
from typing import Any

import pytest

from apps.ai.models import AIJob
from apps.audit.models import AuditEvent
from apps.consults.models import AIFindingVerdict, ReportVersion
from tests.ai.jobs_support import JOBS, NODULE_ENGINE, StoredPhantom, store_chest_phantom, wait_for_job
from tests.consults.support import CONSULTS, RADIOLOGIST, act, consult_in_reading, write_report
from tests.support.tenancy import (
    ADMIN_PASSWORD,
    add_user_with_token,
    discard_tenant,
    provision_throwaway,
    session_login,
)


@pytest.fixture(scope="module")
def nodule_study(platform: Any, workers: Any) -> tuple[StoredPhantom, AIJob]:
    """A chest CT in the clinic on which the built-in detector found nodules (its SEG and SR stored)."""
    stored = store_chest_phantom(platform, "clinic_a", "technologist")
    started = platform.http("clinic_a", "clinic_admin").post(JOBS, json={
        "engine_name": NODULE_ENGINE, "study_instance_uid": stored.study_instance_uid})
    assert started.status_code in (200, 201, 202), started.text
    job = wait_for_job(platform, "clinic_a", started.json()["id"])
    assert job.state == "succeeded", job.error_detail
    assert job.summary["findings"], "the phantom's nodules were found"
    return stored, job


def findings_url(consult_id: str) -> str:
    return f"{CONSULTS}{consult_id}/ai-findings/"


def verdict_url(consult_id: str, finding: dict[str, Any]) -> str:
    return f"{findings_url(consult_id)}{finding['job_id']}/{finding['tracking_uid']}/verdict/"


def listed(platform: Any, consult_id: str, role: str = "radiologist") -> list[dict[str, Any]]:
    answer = platform.http("hospital_b", role).get(findings_url(consult_id))
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def verdict_events(platform: Any, tenant: str, object_id: str) -> list[dict[str, Any]]:
    with platform.schema(tenant):
        return list(AuditEvent.objects.filter(action="ai.finding_verdict", object_id=object_id)
                    .order_by("pk").values("detail"))


def test_the_findings_list_names_each_nodule_with_its_centre_slice_and_measurements(platform, nodule_study):
    stored, job = nodule_study
    consult_id = consult_in_reading(platform, stored)

    findings = listed(platform, consult_id)

    sop_uids = {str(dataset.SOPInstanceUID) for dataset in stored.datasets}
    assert [finding["tracking_uid"] for finding in findings] == [item["tracking_uid"] for item in job.summary["findings"]]
    for number, finding in enumerate(findings, start=1):
        assert finding["number"] == number
        assert finding["job_id"] == str(job.pk)
        assert finding["engine_name"] == NODULE_ENGINE
        assert finding["centre_sop_instance_uid"] in sop_uids
        assert finding["centre_series_instance_uid"] == stored.series_instance_uid
        assert finding["lung_side"] in ("left", "right")
        assert finding["long_axis_mm"] > 0 and finding["volume_mm3"] > 0
        assert finding["verdict"] is None


def test_a_radiologist_accepts_then_edits_a_finding_and_each_verdict_is_audited_in_both_tenants(platform, nodule_study):
    stored, job = nodule_study
    consult_id = consult_in_reading(platform, stored)
    finding = listed(platform, consult_id)[0]
    radiologist = platform.http("hospital_b", "radiologist")

    accepted = radiologist.post(verdict_url(consult_id, finding), json={"verdict": "accept"})
    edited = radiologist.post(verdict_url(consult_id, finding), json={
        "verdict": "edit", "edited_long_axis_mm": 7.5, "edited_location": "right upper lobe", "comment": "smaller"})

    assert accepted.status_code == 200, accepted.text
    assert edited.status_code == 200, edited.text
    assert (edited.json()["verdict"], edited.json()["edited_long_axis_mm"]) == ("edit", 7.5)
    with platform.schema("hospital_b"):
        (verdict,) = AIFindingVerdict.objects.filter(route_id=consult_id)
    assert (verdict.verdict, verdict.edited_location, verdict.radiologist) == ("edit", "right upper lobe", RADIOLOGIST)
    assert listed(platform, consult_id)[0]["verdict"]["verdict"] == "edit"
    hospital_events = verdict_events(platform, "hospital_b", consult_id)
    assert [(event["detail"]["verdict"], event["detail"]["previous_verdict"]) for event in hospital_events] == \
        [("accept", None), ("edit", "accept")]
    clinic_events = [event for event in verdict_events(platform, "clinic_a", str(job.pk))
                     if event["detail"]["consult"] == consult_id]
    assert [event["detail"]["verdict"] for event in clinic_events] == ["accept", "edit"]
    assert clinic_events[0]["detail"]["by_tenant"] == "test-hospital-b"


def test_a_coordinator_may_not_judge_a_finding(platform, nodule_study):
    stored, _ = nodule_study
    consult_id = consult_in_reading(platform, stored)
    finding = listed(platform, consult_id)[0]

    answer = platform.http("hospital_b", "consult_coordinator").post(verdict_url(consult_id, finding),
                                                                     json={"verdict": "accept"})

    assert answer.status_code == 403
    with platform.schema("hospital_b"):
        assert not AIFindingVerdict.objects.filter(route_id=consult_id).exists()


def test_an_edit_without_a_corrected_value_is_refused(platform, nodule_study):
    stored, _ = nodule_study
    consult_id = consult_in_reading(platform, stored)
    finding = listed(platform, consult_id)[0]

    answer = platform.http("hospital_b", "radiologist").post(verdict_url(consult_id, finding), json={"verdict": "edit"})

    assert (answer.status_code, answer.json()["code"]) == (400, "edit_without_values")


def test_a_finding_that_is_not_of_the_consults_studies_is_not_found(platform, nodule_study):
    stored, job = nodule_study
    consult_id = consult_in_reading(platform, stored)
    invented = {"job_id": str(job.pk), "tracking_uid": "2.25.1234567890"}

    answer = platform.http("hospital_b", "radiologist").post(verdict_url(consult_id, invented), json={"verdict": "accept"})

    assert (answer.status_code, answer.json()["code"]) == (404, "ai_finding_not_found")


def test_another_hospitals_radiologist_cannot_judge_the_consults_findings(platform, nodule_study):
    stored, _ = nodule_study
    consult_id = consult_in_reading(platform, stored)
    finding = listed(platform, consult_id)[0]
    other = provision_throwaway(platform, kind="hospital", deployment="public_cloud", key="other_hospital")
    try:
        add_user_with_token(platform, "other_hospital", role="radiologist", username=RADIOLOGIST)
        answer = platform.http("other_hospital", "radiologist").post(verdict_url(consult_id, finding),
                                                                   json={"verdict": "reject"})
        listing = platform.http("other_hospital", "radiologist").get(findings_url(consult_id))
    finally:
        discard_tenant(platform, other.tenant.slug)

    assert (answer.status_code, answer.json()["code"]) == (404, "consult_not_found")
    assert listing.status_code == 404


def test_acceptance_counts_each_verdict_per_engine(platform, nodule_study):
    stored, job = nodule_study
    acceptance = "/api/v1/consults/ai-findings/acceptance/"

    def counts() -> dict[str, Any]:
        rows = platform.http("hospital_b", "hospital_admin").get(acceptance).json()["results"]
        return next((row for row in rows if (row["engine_name"], row["engine_version"]) ==
                     (job.engine_name, job.engine_version)), {"accept": 0, "reject": 0, "edit": 0, "judged": 0})

    before = counts()
    consult_id = consult_in_reading(platform, stored)
    findings = listed(platform, consult_id)
    radiologist = platform.http("hospital_b", "radiologist")
    assert radiologist.post(verdict_url(consult_id, findings[0]), json={"verdict": "accept"}).status_code == 200
    if len(findings) > 1:
        assert radiologist.post(verdict_url(consult_id, findings[1]), json={"verdict": "reject"}).status_code == 200
    after = counts()

    rejected = 1 if len(findings) > 1 else 0
    assert (after["accept"] - before["accept"], after["reject"] - before["reject"], after["edit"] - before["edit"]) == \
        (1, rejected, 0)
    assert after["judged"] == after["accept"] + after["reject"] + after["edit"]
    assert after["acceptance_rate"] == round(after["accept"] / after["judged"], 3)


def test_signing_freezes_the_verdicts_with_the_signed_version(platform, nodule_study):
    stored, _ = nodule_study
    consult_id = consult_in_reading(platform, stored)
    finding = listed(platform, consult_id)[0]
    radiologist = platform.http("hospital_b", "radiologist")
    assert radiologist.post(verdict_url(consult_id, finding), json={"verdict": "accept"}).status_code == 200
    assert write_report(platform, consult_id).status_code == 200
    assert act(platform, "hospital_b", "radiologist", consult_id, "sign").status_code == 200

    rejudged = radiologist.post(verdict_url(consult_id, finding), json={"verdict": "reject"})

    assert rejudged.status_code == 200, rejudged.text
    with platform.schema("hospital_b"):
        signed = ReportVersion.objects.get(route_id=consult_id, signed_at__isnull=False)
    assert [(item["tracking_uid"], item["verdict"]) for item in signed.ai_finding_verdicts] == \
        [(finding["tracking_uid"], "accept")]


def test_the_reading_page_lists_the_findings_and_records_a_verdict_from_its_form(platform, nodule_study):
    stored, job = nodule_study
    consult_id = consult_in_reading(platform, stored)
    client, _ = session_login(platform, platform.host("hospital_b"), username=RADIOLOGIST, password=ADMIN_PASSWORD)

    page = client.get(f"/consults/{consult_id}/")

    assert page.status_code == 200, page.text
    assert 'id="ai-findings"' in page.text
    for finding in job.summary["findings"]:
        assert f'data-sop-instance-uid="{finding["centre_sop_instance_uid"]}"' in page.text
        assert f'/ai-findings/{job.pk}/{finding["tracking_uid"]}/verdict"' in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf is not None
    first = job.summary["findings"][0]
    posted = client.post(f"/consults/{consult_id}/ai-findings/{job.pk}/{first['tracking_uid']}/verdict",
                         data={"verdict": "reject", "csrfmiddlewaretoken": csrf.group(1)},
                         headers={"Referer": f"{platform.base_url}/consults/{consult_id}/"}, allow_redirects=False)
    assert posted.status_code == 302, posted.text
    with platform.schema("hospital_b"):
        assert AIFindingVerdict.objects.get(route_id=consult_id, tracking_uid=first["tracking_uid"]).verdict == "reject"
    assert "Rejected" in client.get(f"/consults/{consult_id}/").text
