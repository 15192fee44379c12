"""Staff pages show Unicode bidi controls in tenant-supplied text as visible codes, so a clinical
question cannot reorder what the reader sees."""

from __future__ import annotations

import pytest

from apps.core.text import reveal_bidi_controls
from tests.consults.support import clinic_study
from tests.support.platform import unique_suffix
from tests.support.tenancy import ADMIN_PASSWORD, session_login

BIDI_CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
                 "\u200e", "\u200f"]


@pytest.mark.parametrize("control", BIDI_CONTROLS)
def test_each_bidi_control_is_shown_as_its_code(control):
    assert reveal_bidi_controls(f"a{control}b") == f"a[U+{ord(control):04X}]b"


def test_text_without_bidi_controls_is_unchanged():
    assert reveal_bidi_controls("Zhang San 张三 <b>&amp;") == "Zhang San 张三 <b>&amp;"


def _consult_with_question(platform, question: str) -> str:
    study = clinic_study(platform, slices=1)
    answer = platform.http("clinic_a", "referring_physician").post("/api/v1/consults/", json={
        "study_instance_uids": [study.study_instance_uid], "hospital": "test-hospital-b",
        "clinical_question": question, "priority": "routine", "submit": True})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_the_clinic_and_hospital_pages_show_bidi_controls_visibly(platform):
    marker = unique_suffix()
    question = f"Nodule {marker} \u202eexe.tnemhcatta\u202c and \u2067isolate\u2069?"
    consult_id = _consult_with_question(platform, question)
    shown = f"Nodule {marker} [U+202E]exe.tnemhcatta[U+202C] and [U+2067]isolate[U+2069]?"

    clinic, _ = session_login(platform, platform.host("clinic_a"), username="referring_physician-user",
                              password=ADMIN_PASSWORD)
    hospital, _ = session_login(platform, platform.host("hospital_b"), username="consult_coordinator-user",
                                password=ADMIN_PASSWORD)
    pages = {"clinic detail": clinic.get(f"/consults/{consult_id}/"), "clinic list": clinic.get("/consults/"),
             "hospital worklist": hospital.get("/consults/")}
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert shown[:60] in page.text, name
        assert not any(control in page.text for control in BIDI_CONTROLS), name
