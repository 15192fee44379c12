"""The embedded OHIF viewer in a real headless Chromium: a radiologist opens a consult from the
worklist, sees its image drawn and scrolls it; a consult's viewer reads only the consult's study."""

from __future__ import annotations

import json
from typing import Any

from pydicom.uid import generate_uid
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.consults.support import RADIOLOGIST, consult_in_reading
from tests.support.browser import chromium, screenshot, tenant_url
from tests.support.dicomweb import ct_study, stow
from tests.viewer.support import viewer_dist

PASSWORD = "correct-horse-battery"  # the test users' password (tests/conftest.py)
# How many distinct colours the biggest cornerstone canvas shows (sampled): a blank one shows 1.
CANVAS_DISTINCT_COLOURS = """
const canvases = [...document.querySelectorAll('.cornerstone-viewport-element canvas, .viewport-element canvas')];
const canvas = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
if (!canvas || !canvas.width) return 0;
const copy = document.createElement('canvas');
copy.width = canvas.width; copy.height = canvas.height;
const context = copy.getContext('2d');
context.drawImage(canvas, 0, 0);
const pixels = context.getImageData(0, 0, copy.width, copy.height).data;
const seen = new Set();
for (let i = 0; i < pixels.length; i += 4 * 97) seen.add(pixels[i] * 65536 + pixels[i + 1] * 256 + pixels[i + 2]);
return seen.size;
"""
# OHIF's viewport overlay: "I: <Instance Number> (<position>/<count>)".
INSTANCE_OVERLAY = "[data-cy='viewport-overlay-bottom-right'] [title='Instance Number']"


def sign_in(browser: Any, platform: Any, tenant: str, next_path: str) -> None:
    browser.get(tenant_url(platform, tenant, f"/accounts/login/?next={next_path}"))
    browser.find_element(By.ID, "id_username").send_keys(RADIOLOGIST)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def acknowledge_ohifs_notices(browser: Any) -> None:
    """OHIF's investigational-use notice covers the overlay; a reader confirms it once per session."""
    for button in browser.find_elements(By.XPATH, "//button[normalize-space()='Confirm and hide']"):
        button.click()


def dicomweb_answers(browser: Any) -> list[tuple[str, Any]]:
    """Every DICOM JSON answer (QIDO-RS, metadata) the page got since the last call, with its URL."""
    answers = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.responseReceived":
            continue
        response = message["params"]["response"]
        if not response.get("mimeType", "").startswith("application/dicom+json"):
            continue
        body = browser.execute_cdp_cmd("Network.getResponseBody", {"requestId": message["params"]["requestId"]})
        answers.append((response["url"], json.loads(body["body"])))
    return answers


def test_a_radiologist_opens_a_consult_from_the_worklist_in_ohif_and_scrolls_it(platform, workers):
    viewer_dist()
    study = ct_study(12, size=128, patient_name="Viewer^Scroll")
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    consult_id = consult_in_reading(platform, study)

    with chromium(1440, 900) as browser:
        # OHIF re-renders while it loads: an element read a moment ago may be gone, so look again.
        wait = WebDriverWait(browser, 90, ignored_exceptions=[StaleElementReferenceException])
        sign_in(browser, platform, "hospital_b", "/consults/")
        row = wait.until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f"#worklist tr[data-consult='{consult_id}']")))
        row.find_element(By.CSS_SELECTOR, "a.viewer").click()
        wait.until(lambda driver: driver.execute_script(CANVAS_DISTINCT_COLOURS) > 8)
        assert browser.current_url == tenant_url(
            platform, "hospital_b", f"/viewer/consults/{consult_id}/viewer?StudyInstanceUIDs={study.study_instance_uid}")
        acknowledge_ohifs_notices(browser)
        overlay = wait.until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, INSTANCE_OVERLAY)))
        assert overlay.text.endswith("(1/12)")
        screenshot(browser, "viewer_consult_first_image")

        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_DOWN)
        wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, INSTANCE_OVERLAY).text.endswith("(2/12)"))
        wait.until(lambda driver: driver.execute_script(CANVAS_DISTINCT_COLOURS) > 8)
        screenshot(browser, "viewer_consult_scrolled")


def test_a_consults_viewer_shows_the_consulting_clinics_study_never_another_with_the_same_uid(platform, workers):
    """docs/consults.md "Image access: the grant": the consult's root answers with its own clinic's
    study only, though another clinic and the hospital itself hold studies with the same UID."""
    viewer_dist()
    uid = generate_uid()
    consulted = ct_study(3, size=64, study_instance_uid=uid, patient_name="Consulted^Clinic-A")
    for tenant, role, name in (("clinic_c", "technologist", "Other^Clinic-C"),
                               ("hospital_b", "hospital_admin", "Own^Hospital-B")):
        same_uid = ct_study(3, size=64, study_instance_uid=uid, patient_name=name)
        stored = stow(platform.http(tenant, role), same_uid.files)
        assert stored.status_code == 200, stored.text
    assert stow(platform.http("clinic_a", "technologist"), consulted.files).status_code == 200
    consult_id = consult_in_reading(platform, consulted)

    with chromium(1440, 900, network_log=True) as browser:
        # OHIF re-renders while it loads: an element read a moment ago may be gone, so look again.
        wait = WebDriverWait(browser, 90, ignored_exceptions=[StaleElementReferenceException])
        sign_in(browser, platform, "hospital_b", f"/viewer/consults/{consult_id}/")
        # OHIF's study list on the consult's root: the consult's one study.
        wait.until(lambda driver: "Clinic-A" in driver.find_element(By.TAG_NAME, "body").text)
        listed = browser.find_element(By.TAG_NAME, "body").text
        assert "Clinic-C" not in listed and "Hospital-B" not in listed
        screenshot(browser, "viewer_consult_study_list")
        # Bodies are kept only for the current document: read the study list's before leaving it.
        answers = dicomweb_answers(browser)
        browser.get(tenant_url(platform, "hospital_b",
                               f"/viewer/consults/{consult_id}/viewer?StudyInstanceUIDs={uid}"))
        wait.until(lambda driver: driver.execute_script(CANVAS_DISTINCT_COLOURS) > 8)
        screenshot(browser, "viewer_consult_same_uid")
        answers += dicomweb_answers(browser)

    consult_root = tenant_url(platform, "hospital_b", f"/consults/{consult_id}/dicomweb/")
    assert answers and all(url.startswith(consult_root) for url, _ in answers)
    names = {element["00100010"]["Value"][0]["Alphabetic"]
             for _, body in answers for element in body if "00100010" in element}
    assert names == {"Consulted^Clinic-A"}
    instances = {element["00080018"]["Value"][0] for _, body in answers for element in body if "00080018" in element}
    assert instances == set(consulted.sop_instance_uids)
