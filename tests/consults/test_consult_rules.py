"""Workflow rules and bad input: the network, the study's owner, idempotency, invalid transitions,
concurrent claims, who may sign, frozen signed reports, amendments, re-run delivery, SLA escalation."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.archive.models import Instance
from apps.consult_routing.models import ConsultRoute
from apps.consults.delivery import consult_deliver
from apps.consults.models import ClinicConsult
from apps.consults.services import consults_escalate_overdue
from tests.consults.support import (
    CONSULTS,
    RADIOLOGIST,
    act,
    clinic_study,
    consult_in_reading,
    consult_request,
    consult_state,
    wait_for_state,
    write_report,
)
from tests.support.dicomweb import ct_study


@pytest.fixture(scope="module")
def study(platform):
    return clinic_study(platform)


def test_a_hospital_outside_the_network_is_refused(platform, study):
    response = consult_request(platform, study, hospital="test-clinic-c")
    assert response.status_code == 422
    assert response.json()["code"] == "hospital_not_in_network"


def test_a_clinic_without_a_referral_link_cannot_send(platform):
    other = ct_study(1, size=32)
    from tests.support.dicomweb import stow

    assert stow(platform.http("clinic_c", "technologist"), other.files).status_code == 200
    response = consult_request(platform, other, tenant="clinic_c")
    assert response.status_code == 422
    assert response.json()["code"] == "hospital_not_in_network"


def test_a_study_not_in_the_clinics_archive_is_not_found(platform):
    response = consult_request(platform, ct_study(1, size=16))
    assert response.status_code == 404
    assert response.json()["code"] == "study_not_found"


def test_another_tenants_study_is_not_found(platform):
    other = ct_study(1, size=32)
    from tests.support.dicomweb import stow

    assert stow(platform.http("clinic_c", "technologist"), other.files).status_code == 200
    response = consult_request(platform, other)
    assert response.status_code == 404
    assert response.json()["code"] == "study_not_found"


def test_a_consult_without_a_clinical_question_is_invalid(platform, study):
    response = platform.http("clinic_a", "referring_physician").post(CONSULTS, json={
        "study_instance_uids": [study.study_instance_uid], "hospital": "test-hospital-b", "clinical_question": " ",
    })
    assert response.status_code == 400


def test_the_same_idempotency_key_creates_one_consult(platform, study):
    key = f"request-{timezone.now().timestamp()}"
    first = consult_request(platform, study, **{"Idempotency-Key": key})
    second = consult_request(platform, study, **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    with platform.schema():
        assert ConsultRoute.objects.filter(idempotency_key=key).count() == 1


def test_an_invalid_transition_is_a_conflict_and_changes_nothing(platform, study):
    consult_id = consult_request(platform, study).json()["id"]
    response = act(platform, "hospital_b", "radiologist", consult_id, "sign")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert consult_state(platform, consult_id)["state"] == "submitted"


def test_a_clinic_role_cannot_accept_and_a_coordinator_cannot_sign(platform, study):
    consult_id = consult_request(platform, study).json()["id"]
    assert act(platform, "clinic_a", "clinic_admin", consult_id, "accept").status_code == 403
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "sign").status_code == 403


def test_a_rejection_needs_a_reason_and_closes_the_consult(platform, study):
    consult_id = consult_request(platform, study).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "reject", {"reason": ""}).status_code == 400
    rejected = act(platform, "hospital_b", "consult_coordinator", consult_id, "reject", {"reason": "Not our service."})
    assert rejected.status_code == 200
    assert consult_state(platform, consult_id)["state"] == "rejected"
    assert consult_state(platform, consult_id)["reject_reason"] == "Not our service."


def test_the_clinic_cancels_before_reading_but_not_after(platform, study):
    cancelled = consult_request(platform, study).json()["id"]
    assert act(platform, "clinic_a", "referring_physician", cancelled, "cancel").status_code == 200
    assert consult_state(platform, cancelled)["state"] == "cancelled"
    reading = consult_in_reading(platform, study)
    response = act(platform, "clinic_a", "referring_physician", reading, "cancel")
    assert response.status_code == 409
    assert consult_state(platform, reading)["state"] == "in_reading"


def test_returned_for_information_goes_back_to_submitted_with_the_answer(platform, study):
    consult_id = consult_request(platform, study).json()["id"]
    asked = act(platform, "hospital_b", "consult_coordinator", consult_id, "return-for-info",
                {"question": "Any prior CT?"})
    assert asked.status_code == 200 and asked.json()["return_question"] == "Any prior CT?"
    assert consult_state(platform, consult_id)["hospital_question"] == "Any prior CT?"
    answered = act(platform, "clinic_a", "referring_physician", consult_id, "provide-info",
                   {"answer": "CT 2024 at another site, normal."})
    assert answered.status_code == 200
    assert answered.json()["state"] == "submitted"
    assert "CT 2024 at another site" in answered.json()["relevant_history"]


def test_a_radiologist_who_has_not_claimed_the_consult_cannot_return_it_for_information(platform, study):
    consult_id = consult_request(platform, study).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    response = act(platform, "hospital_b", "radiologist", consult_id, "return-for-info", {"question": "Prior CT?"})
    assert response.status_code == 403
    assert response.json()["code"] == "not_your_consult"
    assert consult_state(platform, consult_id)["state"] == "accepted"


def test_only_the_claiming_radiologist_returns_a_consult_in_reading_for_information(platform, study):
    consult_id = consult_in_reading(platform, study)
    with platform.schema():
        ConsultRoute.objects.filter(pk=consult_id).update(claimed_by="another-radiologist")
    refused = act(platform, "hospital_b", "radiologist", consult_id, "return-for-info", {"question": "Prior CT?"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_your_consult"
    assert consult_state(platform, consult_id)["state"] == "in_reading"
    with platform.schema():
        ConsultRoute.objects.filter(pk=consult_id).update(claimed_by=RADIOLOGIST)
    asked = act(platform, "hospital_b", "radiologist", consult_id, "return-for-info", {"question": "Prior CT?"})
    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] == "returned_for_info"


def test_two_simultaneous_claims_have_exactly_one_winner(platform, study):
    consult_id = consult_request(platform, study).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        http = platform.http("hospital_b", "radiologist")
        barrier.wait()
        statuses.append(http.post(f"{CONSULTS}{consult_id}/claim/").status_code)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]


def test_only_the_claiming_radiologist_writes_and_signs(platform, study):
    consult_id = consult_in_reading(platform, study)
    with platform.schema():
        ConsultRoute.objects.filter(pk=consult_id).update(claimed_by="another-radiologist")
    assert write_report(platform, consult_id).status_code == 403
    response = act(platform, "hospital_b", "radiologist", consult_id, "sign")
    assert response.status_code == 403
    assert response.json()["code"] == "not_your_consult"


def test_an_empty_report_cannot_be_signed(platform, study):
    consult_id = consult_in_reading(platform, study)
    assert write_report(platform, consult_id, findings="", impression="").status_code == 200
    response = act(platform, "hospital_b", "radiologist", consult_id, "sign")
    assert response.status_code == 400
    assert response.json()["code"] == "report_empty"


def test_the_hospital_cannot_read_a_study_before_accepting_the_consult(platform):
    study = clinic_study(platform, slices=1)
    consult_id = consult_request(platform, study).json()["id"]
    response = platform.http("hospital_b", "radiologist").get(
        f"/consults/{consult_id}/dicomweb/studies/{study.study_instance_uid}/metadata")
    assert response.status_code == 404


def test_the_hospital_never_reads_a_clinic_study_without_a_consult(platform):
    study = clinic_study(platform, slices=1)
    response = platform.http("hospital_b", "radiologist").get(f"/dicomweb/studies/{study.study_instance_uid}/metadata")
    assert response.status_code == 404


@pytest.fixture(scope="module")
def signed(platform, workers, study):
    consult_id = consult_in_reading(platform, study)
    assert write_report(platform, consult_id).status_code == 200
    assert act(platform, "hospital_b", "radiologist", consult_id, "sign").status_code == 200
    return consult_id, wait_for_state(platform, consult_id, "delivered")


def test_a_signed_report_cannot_be_edited(platform, signed):
    consult_id, _ = signed
    response = write_report(platform, consult_id, findings="changed")
    assert response.status_code == 409
    assert consult_state(platform, consult_id, "hospital_b", "radiologist")["reports"][0]["findings"] != "changed"


def test_running_delivery_again_never_makes_a_second_sr(platform, signed):
    consult_id, final = signed
    with platform.schema("clinic_a"):
        assert consult_deliver(route_id=consult_id) == "already_delivered"
        # A worker killed after storing the SR but before recording it: the re-run completes once.
        ClinicConsult.objects.filter(route_id=consult_id).update(delivered_version=0, report_sr_sop_instance_uid="")
        ConsultRoute.objects.filter(pk=consult_id).update(state="finalized")
        assert consult_deliver(route_id=consult_id) == "delivered"
        assert Instance.objects.filter(sop_instance_uid=final["report_sr_sop_instance_uid"]).count() == 1
    assert consult_state(platform, consult_id)["report_sr_sop_instance_uid"] == final["report_sr_sop_instance_uid"]


def test_an_addendum_keeps_every_version_and_is_delivered_as_a_new_sr(platform, signed):
    consult_id, final = signed
    amended = act(platform, "hospital_b", "radiologist", consult_id, "amend", {
        "findings": "Addendum: the nodule is calcified.", "impression": "Benign granuloma.",
    })
    assert amended.status_code == 200, amended.text
    assert [(report["version"], report["kind"]) for report in amended.json()["reports"]] == [(1, "final"), (2, "addendum")]
    delivered = wait_for_state(platform, consult_id, "delivered")
    assert delivered["report"]["version"] == 2
    assert delivered["report_sr_sop_instance_uid"] != final["report_sr_sop_instance_uid"]
    with platform.schema("clinic_a"):
        assert Instance.objects.filter(sop_instance_uid__in=[
            final["report_sr_sop_instance_uid"], delivered["report_sr_sop_instance_uid"]]).count() == 2


def test_an_overdue_consult_is_escalated_once(platform, study):
    consult_id = consult_request(platform, study, priority="stat").json()["id"]
    with platform.schema():
        ConsultRoute.objects.filter(pk=consult_id).update(sla_due_at=timezone.now() - timedelta(minutes=1))
        assert consults_escalate_overdue() >= 1
        assert consults_escalate_overdue() == 0
    assert consult_state(platform, consult_id)["escalated"] is True


def test_the_worklist_orders_by_priority_then_due_time_and_filters(platform, study):
    stat = consult_request(platform, study, priority="stat").json()["id"]
    routine = consult_request(platform, study, priority="routine").json()["id"]
    worklist = platform.http("hospital_b", "consult_coordinator").get(CONSULTS, params={"state": "submitted"}).json()
    ids = [item["id"] for item in worklist["results"]]
    assert ids.index(stat) < ids.index(routine)
    assert all(item["state"] == "submitted" for item in worklist["results"])
    only_stat = platform.http("hospital_b", "consult_coordinator").get(CONSULTS, params={"priority": "stat"}).json()
    assert {item["priority"] for item in only_stat["results"]} == {"stat"}
    assert worklist["results"][0]["clinic_name"]


def test_assigning_to_someone_who_is_not_a_radiologist_is_invalid(platform, study):
    consult_id = consult_request(platform, study).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    response = act(platform, "hospital_b", "consult_coordinator", consult_id, "assign",
                   {"radiologist": "consult_coordinator-user"})
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_radiologist"
    assert RADIOLOGIST
