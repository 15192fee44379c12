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


def _consults_counted(platform, tenant_key: str) -> int:
    return sum(platform.http(tenant_key, "clinic_admin").get(f"{CONSULTS}turnaround/").json()["by_state"].values())


def test_turnaround_counts_only_the_tenants_own_consults(platform, consult_id):
    # Other tests may leave clinic C consults of its own: what counts is that clinic A's never show.
    other_before, own_before = _consults_counted(platform, "clinic_c"), _consults_counted(platform, "clinic_a")
    assert consult_request(platform, clinic_study(platform, slices=1)).status_code == 201
    assert _consults_counted(platform, "clinic_c") == other_before
    assert _consults_counted(platform, "clinic_a") == own_before + 1


def test_another_clinic_reads_no_attachment_of_the_consult(platform, consult_id):
    http = platform.http("clinic_c", "clinic_admin")
    assert http.get(f"{CONSULTS}{consult_id}/attachments/").status_code == 404
    assert http.get(f"{CONSULTS}{consult_id}/attachments/1/").status_code == 404


# --- the consult-scoped DICOMweb root ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def accepted(platform):
    """A consult of clinic_a accepted by hospital_b, its study's UIDs, and a second hospital."""
    from tests.consults.support import act
    from tests.support.tenancy import add_user_with_token, discard_tenant, provision_throwaway

    study = clinic_study(platform, slices=1)
    consult_id = consult_request(platform, study).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    other = provision_throwaway(platform, kind="hospital", key="other_hospital")
    add_user_with_token(platform, "other_hospital", role="radiologist")
    yield {"consult": consult_id, "study": study.study_instance_uid, "series": study.series_instance_uids[0],
           "instance": study.sop_instance_uids[0]}
    discard_tenant(platform, other.tenant.slug)


def _consult_root_paths() -> list[str]:
    from tests.isolation.test_tenant_isolation import CONSULT_ROOT_ENDPOINTS

    return [endpoint.path for endpoint in CONSULT_ROOT_ENDPOINTS]


@pytest.mark.parametrize("path", _consult_root_paths())
def test_another_hospital_reads_nothing_through_the_consults_root(platform, accepted, path):
    response = platform.http("other_hospital", "radiologist").get(path.format(**accepted))
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "consult_not_found"


@pytest.mark.parametrize("path", _consult_root_paths())
def test_the_clinic_reads_nothing_through_the_consults_root_on_its_own_domain(platform, accepted, path):
    response = platform.http("clinic_a", "clinic_admin").get(path.format(**accepted))
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "consult_not_found"


@pytest.mark.parametrize("path", _consult_root_paths())
def test_the_hospitals_token_on_the_clinics_domain_is_refused_at_the_consults_root(platform, accepted, path):
    token = platform.tokens[("hospital_b", "radiologist")]
    response = platform.http("clinic_a", token=token).get(path.format(**accepted))
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("path", [path.replace("/consults/{consult}/dicomweb", "/dicomweb")
                                  for path in _consult_root_paths() if "{study}" in path])
def test_the_hospitals_own_root_resolves_no_grant_by_the_consults_uids(platform, accepted, path):
    response = platform.http("hospital_b", "radiologist").get(path.format(**accepted))
    # Searches scoped to a study or series the hospital's own archive does not hold answer 404 too.
    assert response.status_code == 404, response.text
