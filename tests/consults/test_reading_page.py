"""The hospital's pages in a real headless Chromium at desktop size: sign in, open the worklist,
open the consult, claim it, scroll the granted images, write, mark a key image and sign."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.consults.support import (
    RADIOLOGIST,
    act,
    clinic_study,
    consult_request,
    consult_state,
    wait_for_state,
)
from tests.support.browser import chromium, screenshot, tenant_url

PASSWORD = "correct-horse-battery"  # the test users' password (tests/conftest.py)


def test_a_radiologist_claims_reads_and_signs_in_the_browser(platform, workers):
    study = clinic_study(platform, slices=5)
    consult_id = consult_request(platform, study, priority="urgent").json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "assign",
               {"radiologist": RADIOLOGIST}).status_code == 200

    with chromium(1440, 900) as browser:
        wait = WebDriverWait(browser, 30)
        browser.get(tenant_url(platform, "hospital_b", "/accounts/login/?next=/consults/"))
        browser.find_element(By.ID, "id_username").send_keys(RADIOLOGIST)
        browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        row = wait.until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f"#worklist tr[data-consult='{consult_id}']")))
        assert "urgent" in row.text
        row.find_element(By.CSS_SELECTOR, "a.open").click()
        wait.until(expected_conditions.element_to_be_clickable((By.ID, "claim"))).click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "report-form")))
        loaded = "const i = document.getElementById('frame'); return i.complete && i.naturalWidth > 0;"
        wait.until(lambda driver: driver.execute_script(loaded))
        first_frame = browser.find_element(By.ID, "frame").get_attribute("src")
        browser.find_element(By.ID, "slider").send_keys("\ue014")  # arrow right: next image
        wait.until(lambda driver: driver.find_element(By.ID, "frame").get_attribute("src") != first_frame)
        wait.until(lambda driver: driver.execute_script(loaded))
        browser.find_element(By.CSS_SELECTOR, "button.preset[data-window='-600,1500']").click()
        wait.until(lambda driver: "window=-600,1500" in driver.find_element(By.ID, "frame").get_attribute("src"))
        wait.until(lambda driver: driver.execute_script(loaded))
        browser.find_element(By.ID, "key").click()
        browser.find_element(By.ID, "id_findings").send_keys("No focal lesion. Lungs clear.")
        browser.find_element(By.ID, "id_impression").send_keys("Normal chest CT.")
        screenshot(browser, "consult_reading_page")
        browser.find_element(By.ID, "sign").click()
        signed = wait.until(expected_conditions.presence_of_element_located((By.ID, "signed-findings")))
        assert "No focal lesion" in signed.text
        screenshot(browser, "consult_signed")

    delivered = wait_for_state(platform, consult_id, "delivered")
    assert delivered["report"]["impression"] == "Normal chest CT."
    assert len(delivered["report"]["key_image_sop_instance_uids"]) == 1
    assert delivered["report"]["key_image_sop_instance_uids"][0] in study.sop_instance_uids
    hospital_view = consult_state(platform, consult_id, "hospital_b", "radiologist")
    assert hospital_view["reports"][-1]["signed_by"] == RADIOLOGIST
