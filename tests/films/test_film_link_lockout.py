"""Wrong access codes over HTTP: they lock the link they were tried on (for longer each time, then for
good, and the clinic is told), and per client address they only slow answers down, so patients
sharing one address behind a proxy never stop each other. The audit trail records the client address
by the TRUSTED_PROXY_HOPS rule."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.film_links.models import FilmCodeAttempt, FilmLink
from tests.films.support import clinic_study, enter_code, film_of, issue_link, patient

PROXY_CLIENT_ONE = "198.51.100.11"
PROXY_CLIENT_TWO = "198.51.100.22"


@pytest.fixture(scope="module")
def film(platform, workers):
    return film_of(platform, clinic_study(platform, slices=2))


@pytest.fixture(autouse=True)
def no_wrong_codes_of_other_tests(platform):
    with platform.schema():
        FilmCodeAttempt.objects.all().delete()


def wrong_code_for(link) -> str:
    return "000000" if link.code != "000000" else "111111"


def patient_behind_proxy(platform, client_address: str):
    """A patient's browser whose requests our proxy forwards, appending the address it saw."""
    browser = patient(platform)
    browser.headers["X-Forwarded-For"] = client_address
    return browser


def lock_runs_out(platform, link) -> None:
    with platform.schema():
        FilmLink.objects.filter(pk=link.link_id).update(locked_until=timezone.now() - timedelta(seconds=1))


def stored(platform, link) -> FilmLink:
    with platform.schema():
        return FilmLink.objects.get(pk=link.link_id)


# --- patients behind one proxy ---------------------------------------------------------------------

def test_thirty_wrong_codes_from_one_patient_behind_the_proxy_never_stop_another_patients_right_code(
        platform, film, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    guesser = patient_behind_proxy(platform, PROXY_CLIENT_ONE)
    for _ in range(6):  # six links, five wrong codes each: every one of them locked
        link = issue_link(platform, film["id"])
        answers = [enter_code(guesser, link.path, wrong_code_for(link)).status_code for _ in range(5)]
        assert answers == [403, 403, 403, 403, 429]
    other_patients_link = issue_link(platform, film["id"])

    opened = enter_code(patient_behind_proxy(platform, PROXY_CLIENT_TWO), other_patients_link.path,
                        other_patients_link.code)

    assert opened.status_code == 200
    assert f"{other_patients_link.path}/sheets/1.jpg" in opened.text


def open_another_link_after_wrong_codes(platform, film, *, wrong_codes: int) -> tuple[int, float]:
    """From one browser: `wrong_codes` wrong codes on one link, then the right code of another link;
    the status of that answer and how long it took."""
    guessed, wanted = issue_link(platform, film["id"]), issue_link(platform, film["id"])
    browser = patient(platform)
    for _ in range(wrong_codes):
        assert enter_code(browser, guessed.path, wrong_code_for(guessed)).status_code == 403
    started = time.monotonic()
    status = enter_code(browser, wanted.path, wanted.code).status_code
    return status, time.monotonic() - started


def test_wrong_codes_from_one_address_delay_its_next_answer_but_never_refuse_the_right_code(
        platform, film, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    settings.FILM_CODE_DELAY_AFTER_FAILURES = 3
    settings.FILM_CODE_DELAY_STEP_MILLISECONDS = 600
    settings.FILM_CODE_MAX_DELAY_MILLISECONDS = 600
    status, seconds = open_another_link_after_wrong_codes(platform, film, wrong_codes=3)

    assert status == 200
    assert seconds >= 0.6


def test_below_the_threshold_wrong_codes_from_an_address_add_no_delay(platform, film, settings):
    settings.FILM_CODE_DELAY_AFTER_FAILURES = 3
    settings.FILM_CODE_DELAY_STEP_MILLISECONDS = 2000
    status, seconds = open_another_link_after_wrong_codes(platform, film, wrong_codes=2)

    assert status == 200
    assert seconds < 2


# --- escalating and permanent locks of one link ---------------------------------------------------

def test_the_first_lock_lasts_the_configured_minutes_and_says_how_long(platform, film, settings):
    settings.FILM_LINK_MAX_ATTEMPTS = 2
    settings.FILM_LINK_LOCK_MINUTES = 15
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    assert enter_code(browser, link.path, wrong_code_for(link)).status_code == 403

    locked = enter_code(browser, link.path, wrong_code_for(link))

    assert locked.status_code == 429
    assert 895 <= int(locked.headers["Retry-After"]) <= 900
    assert 895 <= (stored(platform, link).locked_until - timezone.now()).total_seconds() <= 900


def test_the_second_lock_of_a_link_lasts_twice_as_long_as_the_first(platform, film, settings):
    settings.FILM_LINK_MAX_ATTEMPTS = 2
    settings.FILM_LINK_LOCK_MINUTES = 15
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    for _ in range(2):
        enter_code(browser, link.path, wrong_code_for(link))
    lock_runs_out(platform, link)
    enter_code(browser, link.path, wrong_code_for(link))

    locked = enter_code(browser, link.path, wrong_code_for(link))

    assert locked.status_code == 429
    assert 1795 <= (stored(platform, link).locked_until - timezone.now()).total_seconds() <= 1800
    assert stored(platform, link).lockout_count == 2


def test_the_first_wrong_code_after_a_lock_runs_out_is_answered_wrong_not_locked(platform, film, settings):
    settings.FILM_LINK_MAX_ATTEMPTS = 2
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    for _ in range(2):
        enter_code(browser, link.path, wrong_code_for(link))
    lock_runs_out(platform, link)

    answer = enter_code(browser, link.path, wrong_code_for(link))

    assert answer.status_code == 403
    assert "That code is not right" in answer.text


def test_the_right_code_after_a_lock_runs_out_opens_the_film(platform, film, settings):
    settings.FILM_LINK_MAX_ATTEMPTS = 2
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    for _ in range(2):
        enter_code(browser, link.path, wrong_code_for(link))
    lock_runs_out(platform, link)

    assert enter_code(browser, link.path, link.code).status_code == 200
    assert (stored(platform, link).failed_attempts, stored(platform, link).lockout_count) == (0, 0)


def lock_for_good(platform, browser, link) -> None:
    """Two wrong codes per lockout, three lockouts (settings of the tests below)."""
    for lockout in range(3):
        for _ in range(2):
            enter_code(browser, link.path, wrong_code_for(link))
        if lockout < 2:
            lock_runs_out(platform, link)


@pytest.fixture
def short_lockouts(settings):
    settings.FILM_LINK_MAX_ATTEMPTS = 2
    settings.FILM_LINK_MAX_LOCKOUTS = 3


@pytest.mark.usefixtures("short_lockouts")
def test_a_link_locked_for_the_last_time_refuses_even_the_right_code(platform, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    lock_for_good(platform, browser, link)
    lock_runs_out(platform, link)  # a permanent lock does not depend on the clock

    answer = enter_code(browser, link.path, link.code)

    assert answer.status_code == 423
    assert "ask your clinic for a new link" in answer.text
    assert "sheets/1.jpg" not in answer.text
    assert stored(platform, link).locked_permanently_at is not None


@pytest.mark.usefixtures("short_lockouts")
def test_the_clinic_api_shows_when_a_link_was_locked_for_good(platform, film):
    link = issue_link(platform, film["id"])
    lock_for_good(platform, patient(platform), link)

    detail = platform.http("clinic_a", "clinic_admin").get(f"/api/v1/films/{film['id']}/links/{link.link_id}/")

    assert detail.json()["locked_permanently_at"] is not None


@pytest.fixture
def clinic_admin_with_email(platform):
    with platform.schema("clinic_a"):
        User.objects.filter(username="clinic_admin-user").update(email="admin@clinic-a.example")
    yield "admin@clinic-a.example"
    with platform.schema("clinic_a"):
        User.objects.filter(username="clinic_admin-user").update(email="")


@pytest.mark.usefixtures("short_lockouts")
def test_a_permanent_lock_is_audited_and_emailed_to_the_clinic_admins(platform, film, clinic_admin_with_email,
                                                                    mailoutbox):
    link = issue_link(platform, film["id"])
    lock_for_good(platform, patient(platform), link)

    with platform.schema("clinic_a"):
        actions = list(AuditEvent.objects.filter(object_type="film_link", object_id=str(link.link_id))
                       .order_by("id").values_list("action", flat=True))
    assert actions.count("film_link.lock") == 2
    assert actions[-1] == "film_link.lock_permanently"
    assert [message.to for message in mailoutbox] == [[clinic_admin_with_email]]
    assert f"Film link {link.link_id} locked" in mailoutbox[0].subject
    assert link.token not in mailoutbox[0].body


# --- the client address in the audit trail -----------------------------------------------------------

def open_and_read_the_audited_address(platform, film, browser) -> str | None:
    link = issue_link(platform, film["id"])
    assert enter_code(browser, link.path, link.code).status_code == 200
    with platform.schema("clinic_a"):
        return AuditEvent.objects.get(action="film_link.open", object_id=str(link.link_id)).client_ip


def test_with_a_trusted_hop_the_film_audit_records_the_address_the_proxy_saw(platform, film, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    browser = patient_behind_proxy(platform, f"6.6.6.6, {PROXY_CLIENT_ONE}")  # the client forged the first
    assert open_and_read_the_audited_address(platform, film, browser) == PROXY_CLIENT_ONE


def test_without_trusted_hops_the_film_audit_ignores_a_spoofed_x_forwarded_for(platform, film, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    browser = patient_behind_proxy(platform, PROXY_CLIENT_ONE)
    assert open_and_read_the_audited_address(platform, film, browser) == "127.0.0.1"
