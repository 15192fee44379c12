"""The patient's phone: a real headless Chromium at 390×844 opens the link, enters the code, sees
the first film image and the report, and scrolls a series. Also: a delivered consult makes the film."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from apps.consults.events import ConsultDelivered, ReportSnapshot
from apps.films.models import Film
from apps.films.subscribers import film_from_consult
from tests.films.support import clinic_study, issue_link, wait_for_film
from tests.support.browser import chromium, screenshot, tenant_url

LOADED = "return Array.from(document.querySelectorAll(arguments[0])).every(i => i.complete && i.naturalWidth > 0);"


@pytest.fixture(scope="module")
def consult_film(platform, workers):
    study = clinic_study(platform, slices=8)
    event = ConsultDelivered(
        tenant_slug="test-clinic-a", consult_id=900_000 + int(datetime.now(UTC).timestamp()) % 100_000,
        study_instance_uids=(study.study_instance_uid,), key_image_sop_instance_uids=tuple(study.sop_instance_uids[2:6]),
        report=ReportSnapshot(findings="No pulmonary nodule.", impression="Normal chest CT.", recommendations="",
                              signed_by="dr-reader", signed_at=datetime.now(UTC), hospital_name="Test Hospital B",
                              modality_template="CT"),
        report_pdf_key="",
    )
    with platform.schema("clinic_a"):
        film_from_consult(event)
        film_id = Film.objects.get(consult_id=event.consult_id).pk
    return study, wait_for_film(platform, film_id)


def test_a_delivered_consult_makes_a_film_of_its_key_images_with_the_report(consult_film):
    _, film = consult_film
    assert (film["state"], film["images"], film["sheets"], film["has_report"]) == ("ready", 4, 1, True)


def test_the_patient_opens_the_film_on_a_phone(platform, consult_film):
    study, film = consult_film
    link = issue_link(platform, film["id"])
    with chromium(390, 844) as phone:
        wait = WebDriverWait(phone, 30)
        phone.set_window_size(390, 844)
        phone.get(tenant_url(platform, None, link.path))
        code = wait.until(expected_conditions.presence_of_element_located((By.ID, "code")))
        code.send_keys(link.code)
        phone.find_element(By.ID, "open").click()
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "img.sheet")))
        wait.until(lambda driver: driver.execute_script(LOADED, "img.sheet"))
        assert "Normal chest CT." in phone.find_element(By.ID, "report").text
        assert phone.title == "Your imaging results"
        screenshot(phone, "film_patient_page")
        viewer = phone.find_element(By.CSS_SELECTOR, ".viewer")
        phone.execute_script("arguments[0].scrollIntoView()", viewer)
        image = viewer.find_element(By.TAG_NAME, "img")
        wait.until(lambda driver: driver.execute_script(LOADED, ".viewer img"))
        before = image.get_attribute("src")
        viewer.find_element(By.CSS_SELECTOR, "input[type=range]").send_keys(Keys.ARROW_RIGHT)
        wait.until(lambda driver: image.get_attribute("src") != before)
        wait.until(lambda driver: driver.execute_script(LOADED, ".viewer img"))
        assert viewer.find_element(By.CLASS_NAME, "position").text.strip() == f"{len(study.files) // 2 + 2} / {len(study.files)}"
        screenshot(phone, "film_patient_series")
        width = phone.execute_script("return document.documentElement.clientWidth")
        assert width <= 390
