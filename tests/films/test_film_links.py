"""Film jobs on a real worker and the patient link over HTTP: code, lockout, expiry, revocation,
tenant isolation, privacy headers, downloads, access history, language."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pydicom
import pytest
from django.utils import timezone

from apps.film_links.models import FilmLink
from tests.films.support import FILMS, clinic_study, enter_code, film_of, issue_link, patient


@pytest.fixture(scope="module")
def study(platform):
    return clinic_study(platform)


@pytest.fixture(scope="module")
def film(platform, workers, study):
    return film_of(platform, study)


def test_without_key_images_a_film_prints_one_representative_image_per_series(film):
    assert film["state"] == "ready"
    assert (film["sheets"], film["images"]) == (1, 1)


def test_a_key_image_film_prints_exactly_those_images(platform, workers, study):
    created = platform.http("clinic_a", "technologist").post(FILMS, json={
        "study_instance_uid": study.study_instance_uid, "layout": "1x1",
        "key_image_sop_instance_uids": study.sop_instance_uids[:3]})
    from tests.films.support import wait_for_film

    film = wait_for_film(platform, created.json()["id"])
    assert (film["state"], film["sheets"], film["images"]) == ("ready", 3, 3)


def test_a_film_of_a_study_that_is_not_in_the_archive_is_refused(platform):
    response = platform.http("clinic_a", "technologist").post(FILMS, json={"study_instance_uid": "1.2.3.4"})
    assert response.status_code == 404
    assert response.json()["code"] == "study_not_found"


def test_a_link_has_a_long_token_a_six_digit_code_and_a_qr_code(platform, film):
    link = issue_link(platform, film["id"])
    assert len(link.token) >= 43  # 32 random bytes, URL-safe base64
    assert link.code.isdigit() and len(link.code) == 6
    assert link.body["url"].endswith(f"/film/{link.token}")
    assert link.body["qr_svg"].startswith("<svg")
    import base64

    assert base64.b64decode(link.body["qr_png_base64"]).startswith(b"\x89PNG")
    with platform.schema():
        stored = FilmLink.objects.get(pk=link.link_id)
    assert link.token not in (stored.token_hash, stored.code_hash) and link.code not in stored.code_hash
    assert (stored.expires_at - timezone.now()).days in (29, 30)


def test_the_right_code_opens_the_film_with_private_no_store_answers(platform, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    page = enter_code(browser, link.path, link.code)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "private, no-store"
    assert f"{link.path}/sheets/1.jpg" in page.text
    sheet = browser.get(f"{link.path}/sheets/1.jpg")
    assert sheet.status_code == 200 and sheet.content.startswith(b"\xff\xd8")
    assert sheet.headers["Cache-Control"] == "private, no-store"
    frame = browser.get(f"{link.path}/series/0/2.jpg", params={"preset": "lung"})
    assert frame.status_code == 200 and frame.headers["Content-Type"] == "image/jpeg"
    assert browser.get(f"{link.path}/film.pdf").content.startswith(b"%PDF-")


def test_the_page_title_and_urls_carry_no_patient_data(platform, study, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    page = enter_code(browser, link.path, link.code)
    title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
    patient_name = str(study.datasets[0].PatientName)
    assert title == "Your imaging results"
    assert study.patient_id not in page.url and patient_name not in title


def test_without_the_code_nothing_of_the_film_is_served(platform, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    assert "sheets/1.jpg" not in browser.get(link.path).text
    assert browser.get(f"{link.path}/sheets/1.jpg").status_code == 403
    assert browser.get(f"{link.path}/images.zip").status_code == 403


def test_a_wrong_code_is_refused_and_five_lock_the_link(platform, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    wrong = "000000" if link.code != "000000" else "111111"
    first = enter_code(browser, link.path, wrong)
    assert first.status_code == 403 and 'id="error"' in first.text
    for _ in range(3):
        assert enter_code(browser, link.path, wrong).status_code == 403
    assert enter_code(browser, link.path, wrong).status_code == 429
    locked = enter_code(browser, link.path, link.code)
    assert locked.status_code == 429
    assert "sheets/1.jpg" not in locked.text


def test_an_expired_link_is_invalid(platform, film):
    link = issue_link(platform, film["id"])
    with platform.schema():
        FilmLink.objects.filter(pk=link.link_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = patient(platform).get(link.path)
    assert response.status_code == 404
    assert "not valid" in response.text


def test_a_revoked_link_stops_working_even_in_an_open_session(platform, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    assert enter_code(browser, link.path, link.code).status_code == 200
    revoked = platform.http("clinic_a", "clinic_admin").post(f"{FILMS}{film['id']}/links/{link.link_id}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert browser.get(link.path).status_code == 404
    assert browser.get(f"{link.path}/sheets/1.jpg").status_code == 404


def test_an_unknown_token_is_invalid(platform):
    assert patient(platform).get("/film/not-a-real-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").status_code == 404


def test_another_tenant_never_reaches_a_films_link(platform, film):
    link = issue_link(platform, film["id"])
    other = platform.http("clinic_c", "clinic_admin")
    assert other.get(f"{FILMS}{film['id']}/links/{link.link_id}/").status_code == 404
    assert other.post(f"{FILMS}{film['id']}/links/{link.link_id}/revoke/").status_code == 404
    # The link opens on the platform domain only, never on another tenant's domain.
    assert platform.http("clinic_c").get(link.path).status_code == 404
    with platform.schema():
        assert FilmLink.objects.get(pk=link.link_id).revoked_at is None


def test_the_zip_holds_a_dicomdir_and_every_original(platform, study, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    enter_code(browser, link.path, link.code)
    response = browser.get(f"{link.path}/images.zip")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(response.content))
    assert "DICOMDIR" in bundle.namelist()
    dicomdir = pydicom.dcmread(io.BytesIO(bundle.read("DICOMDIR")))
    images = [record for record in dicomdir.DirectoryRecordSequence if record.DirectoryRecordType == "IMAGE"]
    assert len(images) == len(study.files)
    originals = {str(dataset.SOPInstanceUID): dataset for dataset in study.datasets}
    found = {}
    for name in bundle.namelist():
        if name != "DICOMDIR":
            dataset = pydicom.dcmread(io.BytesIO(bundle.read(name)))
            found[str(dataset.SOPInstanceUID)] = dataset
    assert found.keys() == originals.keys()
    for uid, dataset in found.items():
        assert dataset.PixelData == originals[uid].PixelData
        assert dataset.PatientID == originals[uid].PatientID


def test_the_clinic_sees_the_links_access_history(platform, film):
    link = issue_link(platform, film["id"])
    browser = patient(platform)
    enter_code(browser, link.path, "999999" if link.code != "999999" else "888888")
    enter_code(browser, link.path, link.code)
    browser.get(f"{link.path}/images.zip")
    history = platform.http("clinic_a", "clinic_admin").get(f"{FILMS}{film['id']}/links/{link.link_id}/").json()
    actions = [event["action"] for event in history["access_history"]]
    assert actions[0] == "film_link.issue"
    for action in ["film_link.wrong_code", "film_link.open", "film.view", "film.download_dicom"]:
        assert action in actions, action
    assert all(event["client_ip"] for event in history["access_history"][1:])


def test_the_page_speaks_simplified_chinese_to_a_chinese_browser(platform, film):
    link = issue_link(platform, film["id"])
    page = patient(platform, language="zh-CN,zh;q=0.9").get(link.path)
    assert "请输入访问码" in page.text
    assert page.headers["Content-Language"] == "zh-hans"
    assert "Enter your access code" in patient(platform).get(link.path).text


def test_only_clinic_roles_make_films_and_links(platform, film):
    response = platform.http("hospital_b", "radiologist").post(FILMS, json={"study_instance_uid": "1.2.3"})
    assert response.status_code == 403


def test_only_clinic_admins_see_a_links_access_history(platform, film):
    link = issue_link(platform, film["id"])
    path = f"{FILMS}{film['id']}/links/{link.link_id}/"
    for role in ("technologist", "referring_physician"):
        detail = platform.http("clinic_a", role).get(path)
        assert detail.status_code == 200
        assert "access_history" not in detail.json(), role
    assert "access_history" in platform.http("clinic_a", "clinic_admin").get(path).json()


def issue_link_through_host(platform, film_id: int, host: str) -> dict:
    clinic = platform.http("clinic_a", "technologist")
    clinic.headers["Host"] = host
    response = clinic.post(f"{FILMS}{film_id}/links/", json={})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_issued_url_carries_the_port_the_clinic_reached_the_platform_on(platform, film):
    port = platform.base_url.rsplit(":", 1)[1]
    issued = issue_link_through_host(platform, film["id"], f"{platform.host('clinic_a')}:{port}")
    assert issued["url"] == f"http://localhost:{port}/film/{issued['token']}"
    assert patient(platform).get(issued["url"].replace(f"http://localhost:{port}", "")).status_code == 200


def test_a_link_issued_on_the_default_port_names_no_port(platform, film):
    issued = issue_link_through_host(platform, film["id"], f"{platform.host('clinic_a')}:80")
    assert issued["url"] == f"http://localhost/film/{issued['token']}"


def test_with_film_link_https_the_link_is_https_without_the_default_port(platform, film, settings):
    settings.FILM_LINK_HTTPS = True
    issued = issue_link_through_host(platform, film["id"], f"{platform.host('clinic_a')}:443")
    assert issued["url"] == f"https://localhost/film/{issued['token']}"


def test_a_port_in_film_link_host_wins_over_the_port_the_link_was_issued_on(settings):
    from apps.films.services import film_link_url

    settings.FILM_LINK_HOST = "films.example.com:8443"
    assert film_link_url("a-token", served_port=8000) == "http://films.example.com:8443/film/a-token"
