"""Isolation invariant for the consult endpoints: a consult is visible to exactly its clinic and its
hospital; any other tenant gets 404 for every read and action, and a token works only on its own
tenant's domain."""

from __future__ import annotations

import pytest

from tests.consults.support import CONSULTS, clinic_study, consult_request

ACTIONS = ["submit", "cancel", "provide-info", "accept", "reject", "assign", "return-for-info", "claim", "report",
           "sign", "amend"]


@pytest.fixture(scope="module")
def consult_id(platform):
    study = clinic_study(platform, slices=1)
    response = consult_request(platform, study)
    assert response.status_code == 201
    return response.json()["id"]


def test_another_clinic_does_not_see_the_consult(platform, consult_id):
    http = platform.http("clinic_c", "clinic_admin")
    assert http.get(f"{CONSULTS}{consult_id}/").status_code == 404
    assert consult_id not in [item["id"] for item in http.get(CONSULTS).json()["results"]]
    assert http.get(f"{CONSULTS}{consult_id}/report.pdf").status_code == 404


@pytest.mark.parametrize("action", ACTIONS)
def test_another_clinic_cannot_act_on_the_consult(platform, consult_id, action):
    for role in ["clinic_admin", "referring_physician"]:
        response = platform.http("clinic_c", role).post(f"{CONSULTS}{consult_id}/{action}/", json={
            "reason": "x", "answer": "x", "question": "x", "radiologist": "x", "findings": "x", "impression": "x",
        })
        assert response.status_code in (403, 404), (action, role, response.status_code)
    assert platform.http("clinic_a", "referring_physician").get(f"{CONSULTS}{consult_id}/").json()["state"] == "submitted"


def test_a_clinic_token_on_the_hospitals_domain_is_refused(platform, consult_id):
    token = platform.tokens[("clinic_a", "clinic_admin")]
    response = platform.http("hospital_b", token=token).get(f"{CONSULTS}{consult_id}/")
    assert response.status_code == 401


def test_the_clinic_sees_no_hospital_working_records(platform, consult_id):
    body = platform.http("clinic_a", "clinic_admin").get(f"{CONSULTS}{consult_id}/").json()
    assert "reports" not in body and "triage" not in body and "clinic_name" not in body


def test_turnaround_counts_only_the_tenants_own_consults(platform, consult_id):
    other = platform.http("clinic_c", "clinic_admin").get(f"{CONSULTS}turnaround/").json()
    assert sum(other["by_state"].values()) == 0


def test_another_clinic_reads_no_attachment_of_the_consult(platform, consult_id):
    http = platform.http("clinic_c", "clinic_admin")
    assert http.get(f"{CONSULTS}{consult_id}/attachments/").status_code == 404
    assert http.get(f"{CONSULTS}{consult_id}/attachments/1/").status_code == 404
