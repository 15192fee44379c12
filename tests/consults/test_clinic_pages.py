"""The clinic's consult pages with a signed-in session: send a consult, answer the hospital's
question, add a referral letter."""

from __future__ import annotations

import re
from typing import Any

from tests.consults.support import act, clinic_study, consult_state
from tests.consults.test_attachments import _pdf
from tests.support.platform import TenantHttp

PASSWORD = "correct-horse-battery"  # the test users' password (tests/conftest.py)


def _csrf(page: Any) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, page.text[:300]
    return match.group(1)


def _signed_in(platform: Any) -> TenantHttp:
    browser = TenantHttp(platform.base_url, platform.domains["clinic_a"], None)
    login = browser.get("/accounts/login/")
    answer = browser.post("/accounts/login/", data={"csrfmiddlewaretoken": _csrf(login), "username": "referring_physician-user",
                                                    "password": PASSWORD, "next": "/consults/"})
    assert answer.status_code == 200 and "New consult" in answer.text
    return browser


def test_a_clinic_user_sends_answers_and_attaches_through_the_pages(platform):
    study = clinic_study(platform, slices=1)
    browser = _signed_in(platform)
    form = browser.get("/consults/")
    sent = browser.post("/consults/", data={
        "csrfmiddlewaretoken": _csrf(form), "study_instance_uid": study.study_instance_uid,
        "hospital": "test-hospital-b", "priority": "urgent", "clinical_question": "Nodule?", "relevant_history": "",
    })
    assert sent.status_code == 200
    consult_id = re.search(r"/consults/([0-9a-f-]{36})/", sent.url).group(1)
    assert consult_state(platform, consult_id)["state"] == "submitted"

    asked = act(platform, "hospital_b", "consult_coordinator", consult_id, "return-for-info",
                {"question": "Which side hurts?"})
    assert asked.status_code == 200
    page = browser.get(f"/consults/{consult_id}/")
    assert "Which side hurts?" in page.text
    browser.post(f"/consults/{consult_id}/provide-info", data={"csrfmiddlewaretoken": _csrf(page),
                                                               "answer": "The right side."})
    assert consult_state(platform, consult_id)["state"] == "submitted"

    page = browser.get(f"/consults/{consult_id}/")
    added = browser.post(f"/consults/{consult_id}/attachments", data={"csrfmiddlewaretoken": _csrf(page),
                                                                      "kind": "referral_letter"},
                         files={"file": ("letter.pdf", _pdf("Referral"), "application/pdf")})
    assert "letter.pdf" in added.text
    listed = platform.http("hospital_b", "consult_coordinator").get(f"/api/v1/consults/{consult_id}/attachments/")
    assert [item["filename"] for item in listed.json()["results"]] == ["letter.pdf"]
