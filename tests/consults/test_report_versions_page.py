"""The reading desk in a real headless Chromium: the patient and study identity above the images,
window/level by dragging, "Mark key image" after signing (it fills the addendum's key images), an
addendum signed on the page, and both versions (original, then addendum) on the hospital's and the
clinic's pages, each with its own downloadable PDF."""

from __future__ import annotations

import base64
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.consults.support import RADIOLOGIST, act, consult_in_reading, consult_state, write_report
from tests.consults.test_report_versions import pdf_text
from tests.support.browser import chromium, screenshot, tenant_url
from tests.support.dicomweb import ct_study, stow
from tests.support.platform import wait_until

PASSWORD = "correct-horse-battery"  # the test users' password (tests/conftest.py)
LOADED = "const i = document.getElementById('frame'); return i.complete && i.naturalWidth > 0;"
ORIGINAL_FINDINGS = "A 9 mm solid nodule in the right upper lobe."
ADDENDUM_FINDINGS = "Compared with the prior CT the nodule is stable."
# Collects the page's uncaught script errors, so a button that throws fails the test.
CATCH_ERRORS = "window.pageErrors = []; window.addEventListener('error', (e) => window.pageErrors.push(e.message));"
# Downloads a link the way the browser would (the session's cookie): [status, content type, base64 body].
DOWNLOAD = """const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(async (r) => { const bytes = new Uint8Array(await r.arrayBuffer()); let text = "";
  bytes.forEach((b) => { text += String.fromCharCode(b); }); done([r.status, r.headers.get("Content-Type"), btoa(text)]); });"""


def _sign_in(browser: Any, platform: Any, tenant: str, username: str, next_path: str) -> None:
    browser.get(tenant_url(platform, tenant, f"/accounts/login/?next={next_path}"))
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def _delivered_versions(platform: Any, consult_id: str, count: int) -> dict:
    return wait_until(lambda: (body := consult_state(platform, consult_id))["state"] == "delivered"
                      and len([item for item in body["report_versions"] if item["pdf"]]) == count and body,
                      timeout=90, message=f"{count} delivered report versions")


def test_a_radiologist_signs_an_addendum_and_the_clinic_sees_both_versions(platform, workers):
    study = ct_study(4, size=64, patient_name="Lovelace^Ada", study_description="CT chest with contrast",
                     accession_number="ACC-7781")
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    consult_id = consult_in_reading(platform, study)
    assert write_report(platform, consult_id, findings=ORIGINAL_FINDINGS).status_code == 200
    assert act(platform, "hospital_b", "radiologist", consult_id, "sign").status_code == 200
    _delivered_versions(platform, consult_id, 1)

    with chromium(1440, 1000) as browser:
        wait = WebDriverWait(browser, 30)
        _sign_in(browser, platform, "hospital_b", RADIOLOGIST, f"/consults/{consult_id}/")
        identity = wait.until(expected_conditions.presence_of_element_located((By.ID, "identity")))
        for expected in ("Lovelace Ada", study.patient_id, "CT chest with contrast", "ACC-7781", "CT", "2026-01-15"):
            assert expected in identity.text
        assert "Consult report" in browser.find_element(By.ID, "results").text  # the delivered SR, listed
        wait.until(lambda driver: driver.execute_script(LOADED))

        # Window/level: drag right (wider) and down (higher center) from a preset.
        browser.find_element(By.CSS_SELECTOR, "button.preset[data-window='-600,1500']").click()
        wait.until(lambda driver: "window=-600,1500" in driver.find_element(By.ID, "frame").get_attribute("src"))
        frame = browser.find_element(By.ID, "frame")
        ActionChains(browser).move_to_element(frame).click_and_hold().move_by_offset(40, 20).release().perform()
        dragged = wait.until(lambda driver: (src := driver.find_element(By.ID, "frame").get_attribute("src"))
                             and "window=-600,1500" not in src and src)
        center, width = (int(value) for value in dragged.split("window=")[1].split(",")[:2])
        assert center > -600 and width > 1500
        wait.until(lambda driver: driver.execute_script(LOADED))

        # Mark key image after signing: the image goes into the addendum's key images, nothing throws.
        browser.execute_script(CATCH_ERRORS)
        browser.find_element(By.ID, "key").click()
        shown = browser.execute_script("return document.getElementById('frame').src")
        assert browser.execute_script("return window.pageErrors") == []
        marked = browser.find_element(By.ID, "addendum-key-list").text
        assert marked in shown and marked in study.sop_instance_uids

        browser.find_element(By.ID, "id_addendum-findings").send_keys(ADDENDUM_FINDINGS)
        browser.find_element(By.ID, "id_addendum-impression").send_keys("Stable nodule.")
        screenshot(browser, "consult_addendum_form")
        browser.find_element(By.ID, "sign-addendum").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "report-v2")))
        headings = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "#report-versions h3")]
        assert headings[0].startswith(f"Original report (v1, signed by {RADIOLOGIST}, at ")
        assert headings[1].startswith(f"Addendum 1 (v2, signed by {RADIOLOGIST}, at ")
        assert browser.find_element(By.CSS_SELECTOR, "#report-v1 .findings").text == ORIGINAL_FINDINGS
        # The original was delivered: its PDF is linked here too (the addendum's once it is delivered).
        assert browser.find_element(By.CSS_SELECTOR, "#report-v1 a.pdf").get_attribute("href").endswith(
            f"/api/v1/consults/{consult_id}/report.pdf?version=1")
        assert marked in browser.find_element(By.CSS_SELECTOR, "#report-v2 .key-images").text
        screenshot(browser, "consult_addendum_signed")

        _delivered_versions(platform, consult_id, 2)
        _sign_in(browser, platform, "clinic_a", "referring_physician-user", f"/consults/{consult_id}/")
        report = wait.until(expected_conditions.presence_of_element_located((By.ID, "report")))
        headings = [element.text for element in report.find_elements(By.CSS_SELECTOR, "h3")]
        assert headings[0].startswith(f"Original report (v1, signed by {RADIOLOGIST}, at ")
        assert headings[1].startswith(f"Addendum 1 (v2, signed by {RADIOLOGIST}, at ")
        links = [element.get_attribute("href") for element in report.find_elements(By.CSS_SELECTOR, "a.pdf")]
        assert [link.rsplit("/", 1)[1] for link in links] == ["report.pdf?version=1", "report.pdf?version=2"]
        browser.execute_script("document.getElementById('report-v2').scrollIntoView()")
        screenshot(browser, "consult_clinic_versions")
        texts = []
        for link in links:
            status, content_type, body = browser.execute_async_script(DOWNLOAD, link)
            assert (status, content_type) == (200, "application/pdf")
            texts.append(pdf_text(base64.b64decode(body)))
    assert ORIGINAL_FINDINGS in texts[0] and ADDENDUM_FINDINGS not in texts[0]
    assert texts[1].index(ADDENDUM_FINDINGS) < texts[1].index(ORIGINAL_FINDINGS)


def test_mark_key_image_after_signing_adds_it_to_the_addendum_without_an_error(platform, workers):
    """The button used to stay on the page after signing and throw (no report form to write into)."""
    study = ct_study(2, size=32)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    consult_id = consult_in_reading(platform, study)
    assert write_report(platform, consult_id).status_code == 200
    assert act(platform, "hospital_b", "radiologist", consult_id, "sign").status_code == 200

    with chromium(1280, 900) as browser:
        wait = WebDriverWait(browser, 30)
        _sign_in(browser, platform, "hospital_b", RADIOLOGIST, f"/consults/{consult_id}/")
        wait.until(expected_conditions.presence_of_element_located((By.ID, "frame")))
        wait.until(lambda driver: driver.execute_script(LOADED))
        browser.execute_script(CATCH_ERRORS)
        browser.find_element(By.ID, "key").click()
        assert browser.execute_script("return window.pageErrors") == []
        shown = browser.find_element(By.ID, "frame").get_attribute("src").split("/instances/")[1].split("/")[0]
        assert browser.find_element(By.ID, "addendum-key-list").text == shown
        assert browser.find_element(By.NAME, "addendum-key_images").get_attribute("value") == shown
