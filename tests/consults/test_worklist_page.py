"""The hospital's worklist page: what each row shows, its filters and default view, the triage actions
posted from it (with the permissions table of apps/consults/permissions.py), the header badge, the
arrival e-mail, its Chinese rendering and the tenant's time zone, and its layout in Chromium."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from apps.consults.selectors import age_at
from apps.consults.templatetags.consult_pages import sla_left
from tests.consults.support import (
    RADIOLOGIST,
    act,
    clinic_study,
    consult_in_reading,
    consult_request,
    consult_state,
    wait_for_state,
    write_report,
)
from tests.support.browser import chromium, emulate_viewport, screenshot, tenant_url
from tests.support.dicomweb import mixed_study, stow
from tests.support.tenancy import ADMIN_PASSWORD, session_login

COORDINATOR = "consult_coordinator-user"


def _signed_in(platform: Any, username: str, **headers: str) -> Any:
    client, answer = session_login(platform, platform.domains["hospital_b"], username=username,
                                   password=ADMIN_PASSWORD)
    assert answer.status_code == 302, answer.text
    client.headers.update(headers)
    return client


def _worklist(client: Any, query: str = "") -> str:
    page = client.get(f"/consults/{query}")
    assert page.status_code == 200, page.text
    return page.text


def _row(html: str, consult_id: str) -> str | None:
    found = re.search(rf'<tr data-consult="{consult_id}">(.*?)</tr>', html, re.S)
    return found.group(1) if found else None


def platform_host(client: Any) -> str:
    return str(client.headers["Host"])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _post(client: Any, consult_id: str, action: str, **fields: str) -> Any:
    token = _csrf(_worklist(client))
    return client.post(f"/consults/{consult_id}/{action}", allow_redirects=False,
                       data={"csrfmiddlewaretoken": token, "next": "/consults/", **fields},
                       headers={"Referer": f"http://{platform_host(client)}/consults/"})


def _new_consult(platform: Any) -> str:
    created = consult_request(platform, clinic_study(platform))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


# --- what a row shows -----------------------------------------------------------------------------


def test_a_row_shows_the_patient_age_sex_readable_modalities_body_parts_and_time_left(platform):
    study = mixed_study(patient_name="Wang^Li", patient_birth_date="19700520", patient_sex="F", study_date="20260115",
                        study_description="CT CHEST")
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    consult_id = consult_request(platform, study, priority="urgent").json()["id"]

    row = _row(_worklist(_signed_in(platform, COORDINATOR)), consult_id)

    assert row is not None
    assert "Wang Li" in row
    assert study.patient_id in row
    assert '<td class="age-sex" data-label="Age/sex">55 y / F</td>' in row  # born 1970-05-20, studied 2026-01-15
    assert '<td class="modalities" data-label="Modality">CT, MR</td>' in row
    assert "CHEST, HEAD" in row
    assert "CT CHEST" in row
    assert re.search(r'data-due="[^"]+">\d+ h \d+ min left</span>', row), row
    assert '<td class="clinic" data-label="Clinic">' in row and platform.tenants["clinic_a"].name in row


def test_the_time_left_is_whole_hours_and_minutes_and_overdue_is_marked():
    due = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    assert sla_left(due, due - timedelta(hours=2, minutes=10, seconds=30)) == "2 h 10 min left"
    assert sla_left(due, due - timedelta(minutes=5)) == "5 min left"
    assert sla_left(due, due + timedelta(minutes=35, seconds=10)) == "overdue by 35 min"
    assert sla_left(None) == ""


def test_the_age_is_counted_in_whole_years_on_the_study_date():
    assert age_at("1970-05-20", "2026-05-19") == "055Y"
    assert age_at("1970-05-20", "2026-05-20") == "056Y"
    assert age_at("", "2026-05-20") == ""


# --- default view and filters ---------------------------------------------------------------------


def test_closed_consults_leave_the_default_view_and_the_closed_filter_shows_them(platform, workers):
    study = clinic_study(platform)
    delivered = consult_in_reading(platform, study)
    assert write_report(platform, delivered).status_code == 200
    assert act(platform, "hospital_b", "radiologist", delivered, "sign").status_code == 200
    wait_for_state(platform, delivered, "delivered")
    rejected = _new_consult(platform)
    assert act(platform, "hospital_b", "consult_coordinator", rejected, "reject",
               {"reason": "Outside our service."}).status_code == 200
    still_open = _new_consult(platform)
    client = _signed_in(platform, COORDINATOR)

    default_view = _worklist(client)
    closed_view = _worklist(client, "?state=closed")

    assert _row(default_view, still_open) is not None
    assert _row(default_view, delivered) is None
    assert _row(default_view, rejected) is None
    assert _row(closed_view, delivered) is not None and _row(closed_view, rejected) is not None
    assert _row(closed_view, still_open) is None


def test_mine_shows_only_consults_assigned_to_or_claimed_by_me(platform):
    assigned = _new_consult(platform)
    assert act(platform, "hospital_b", "consult_coordinator", assigned, "accept").status_code == 200
    assert act(platform, "hospital_b", "consult_coordinator", assigned, "assign",
               {"radiologist": RADIOLOGIST}).status_code == 200
    someone_elses = _new_consult(platform)

    mine = _worklist(_signed_in(platform, RADIOLOGIST), "?mine=on")

    assert _row(mine, assigned) is not None
    assert _row(mine, someone_elses) is None


@pytest.fixture
def clinic_c_linked(platform):
    from tenants.models import ReferralLink
    from tenants.services import referral_link_create, referral_link_deactivate

    with platform.schema():
        link = referral_link_create(clinic_slug=platform.tenants["clinic_c"].slug,
                                    hospital_slug=platform.tenants["hospital_b"].slug)
    yield
    with platform.schema():
        if ReferralLink.objects.filter(pk=link.pk, active=True).exists():
            referral_link_deactivate(link_id=link.pk)


def test_the_clinic_filter_shows_one_clinic_s_consults(platform, clinic_c_linked):
    from_a = _new_consult(platform)
    study_c = mixed_study()  # clinic C's own study, stored in its archive
    assert stow(platform.http("clinic_c", "technologist"), study_c.files).status_code == 200
    from_c = consult_request(platform, study_c, tenant="clinic_c").json()["id"]

    only_c = _worklist(_signed_in(platform, COORDINATOR), f"?clinic={platform.tenants['clinic_c'].slug}")

    assert _row(only_c, from_c) is not None
    assert _row(only_c, from_a) is None


# --- triage actions posted from the page ----------------------------------------------------------


def test_a_coordinator_accepts_assigns_rejects_and_returns_for_information_from_the_worklist(platform):
    client = _signed_in(platform, COORDINATOR)
    to_assign, to_reject, to_return = _new_consult(platform), _new_consult(platform), _new_consult(platform)

    assert _post(client, to_assign, "accept").headers["Location"] == "/consults/"
    assigned = _post(client, to_assign, "assign", radiologist=RADIOLOGIST)
    rejected = _post(client, to_reject, "reject", reason="Outside our service.")
    returned = _post(client, to_return, "return-for-info", question="Which side hurts?")

    assert [answer.status_code for answer in (assigned, rejected, returned)] == [302, 302, 302]
    hospital = consult_state(platform, to_assign, "hospital_b", "consult_coordinator")
    assert (hospital["state"], hospital["assigned_to"]) == ("assigned", RADIOLOGIST)
    clinic_rejected = consult_state(platform, to_reject)
    assert (clinic_rejected["state"], clinic_rejected["reject_reason"]) == ("rejected", "Outside our service.")
    clinic_returned = consult_state(platform, to_return)
    assert (clinic_returned["state"], clinic_returned["hospital_question"]) == ("returned_for_info", "Which side hurts?")


def test_a_radiologist_may_not_assign_or_reject_from_the_page(platform):
    consult_id = _new_consult(platform)
    client = _signed_in(platform, RADIOLOGIST)

    assign = _post(client, consult_id, "assign", radiologist=RADIOLOGIST)
    reject = _post(client, consult_id, "reject", reason="No.")

    assert (assign.status_code, reject.status_code) == (403, 403)
    assert consult_state(platform, consult_id)["state"] == "submitted"
    row = _row(_worklist(client, "?state=all"), consult_id)
    assert row is not None and "/reject" not in row and "/assign" not in row and "/accept" not in row


def test_a_page_post_without_the_csrf_token_is_refused(platform):
    consult_id = _new_consult(platform)
    client = _signed_in(platform, COORDINATOR)

    answer = client.post(f"/consults/{consult_id}/reject", data={"reason": "x"}, allow_redirects=False)

    assert answer.status_code == 403
    assert consult_state(platform, consult_id)["state"] == "submitted"


# --- badge and e-mail -----------------------------------------------------------------------------


def _badge(html: str) -> int:
    found = re.search(r'id="worklist-badge"[^>]*>(\d+)</span>', html)
    return int(found.group(1)) if found else 0


def test_the_badge_counts_new_consults_for_coordinators_and_assigned_ones_for_radiologists(platform):
    from apps.consult_routing.models import ConsultRoute

    coordinator, radiologist = _signed_in(platform, COORDINATOR), _signed_in(platform, RADIOLOGIST)
    hospital = platform.tenants["hospital_b"]
    consult_id = _new_consult(platform)
    with platform.schema():
        submitted = ConsultRoute.objects.filter(hospital=hospital, state="submitted").count()
        assigned = ConsultRoute.objects.filter(hospital=hospital, state="assigned", assigned_to=RADIOLOGIST).count()

    assert _badge(_worklist(coordinator)) == submitted
    assert _badge(_worklist(radiologist)) == assigned
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "assign",
               {"radiologist": RADIOLOGIST}).status_code == 200
    assert _badge(_worklist(coordinator)) == submitted - 1
    assert _badge(_worklist(radiologist)) == assigned + 1


@pytest.fixture
def coordinator_with_email(platform):
    from apps.accounts.models import User

    with platform.schema("hospital_b"):
        User.objects.filter(username=COORDINATOR).update(email="coordinator@hospital-b.example")
    yield "coordinator@hospital-b.example"
    with platform.schema("hospital_b"):
        User.objects.filter(username=COORDINATOR).update(email="")


def test_a_submitted_consult_is_emailed_to_the_hospital_s_coordinators(platform, coordinator_with_email, mailoutbox):
    consult_id = consult_request(platform, clinic_study(platform), priority="stat").json()["id"]

    assert [message.to for message in mailoutbox] == [[coordinator_with_email]]
    assert mailoutbox[0].subject == f"New stat consult from {platform.tenants['clinic_a'].name}"
    assert consult_id in mailoutbox[0].body


# --- language and time zone -----------------------------------------------------------------------

#: The worklist page's own English words (headings, labels, buttons): none may show on the Chinese page.
ENGLISH_PAGE_WORDS = ["Worklist", "Patient", "Age/sex", "Body part", "Description", "Assignee", "Priority", "Filter",
                      "Sign out", "Times in", "Mine only", "Accept", "Reject", "Ask the clinic", " left<", "routine",
                      "submitted", "consult coordinator"]


def test_the_worklist_speaks_chinese_to_a_chinese_browser(platform):
    study = mixed_study(patient_name="Zhang^Wei")  # no English word in the row's own data
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    consult_id = consult_request(platform, study).json()["id"]
    client = _signed_in(platform, COORDINATOR, **{"Accept-Language": "zh-Hans"})

    html = _worklist(client)

    assert '<html lang="zh-hans">' in html
    assert "工作列表" in html and "年龄/性别" in html and "剩余" in html
    row = _row(html, consult_id)
    assert row is not None and "56 岁 / 女" in row
    # The page's own strings: its script and the other rows (other tests' patients) left out.
    page = re.sub(r"<tbody>.*?</tbody>", f"<tbody>{row}</tbody>", re.sub(r"<script.*?</script>", "", html, flags=re.S),
                  flags=re.S)
    visible = re.sub(r"<[^>]+>", " ", page)
    assert [word for word in ENGLISH_PAGE_WORDS if word.strip("<") in visible] == []


def test_the_language_chosen_in_the_header_outlasts_the_browser_s(platform):
    client = _signed_in(platform, COORDINATOR, **{"Accept-Language": "zh-Hans"})
    token = _csrf(_worklist(client))

    chosen = client.post("/i18n/setlang/", data={"language": "en", "next": "/consults/", "csrfmiddlewaretoken": token},
                         headers={"Referer": f"http://{platform_host(client)}/consults/"}, allow_redirects=False)

    assert chosen.status_code == 302
    html = _worklist(client)
    assert '<html lang="en">' in html and "<h2>Worklist</h2>" in html


@pytest.fixture
def hospital_in_shanghai(platform):
    from tenants.models import Tenant

    with platform.schema():
        Tenant.objects.filter(pk=platform.tenants["hospital_b"].pk).update(time_zone="Asia/Shanghai")
    yield
    with platform.schema():
        Tenant.objects.filter(pk=platform.tenants["hospital_b"].pk).update(time_zone="UTC")


def test_times_are_shown_in_the_tenant_s_time_zone_which_is_named(platform, hospital_in_shanghai):
    consult_id = _new_consult(platform)

    html = _worklist(_signed_in(platform, COORDINATOR))

    assert "Times in Asia/Shanghai" in html
    row = _row(html, consult_id)
    assert row is not None and re.search(r'data-due="[^"]+\+08:00"', row), row


# --- layout in Chromium ---------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(1024, 768), (390, 844)])
def test_the_worklist_stays_usable_on_a_small_laptop_and_a_phone(platform, width, height):
    consult_id = _new_consult(platform)
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200

    with chromium(width, height) as browser:
        emulate_viewport(browser, width, height)
        # Newest first: the whole suite leaves many open consults in this hospital's worklist.
        browser.get(tenant_url(platform, "hospital_b", "/accounts/login/?next=/consults/%3Fsort%3Dreceived"))
        browser.find_element(By.ID, "id_username").send_keys(COORDINATOR)
        browser.find_element(By.ID, "id_password").send_keys(ADMIN_PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        row = WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f"#worklist tr[data-consult='{consult_id}']")))
        screenshot(browser, f"worklist_{width}x{height}_top")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
        assign = row.find_element(By.CSS_SELECTOR, "form.assign button")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", assign)
        screenshot(browser, f"worklist_{width}x{height}")
        box = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.right];",
                                     assign)

        assert browser.execute_script("return window.innerWidth;") == width
        assert overflow <= 0
        assert 0 <= box[0] and box[1] <= width
        Select(row.find_element(By.CSS_SELECTOR, "form.assign select")).select_by_value(RADIOLOGIST)
        assign.click()
        WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".messages li")))
        assert consult_state(platform, consult_id, "hospital_b", "consult_coordinator")["assigned_to"] == RADIOLOGIST
