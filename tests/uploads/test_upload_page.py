"""The clinic's upload page in a real headless Chromium (docs/uploads.md): a technologist signs in,
sends a folder of 300 DICOM files and a zip with a bad member, watches the progress, reads why the
bad member was refused; a transfer cut off by a closed tab resumes from the server's offset."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import chromium, screenshot, tenant_url
from tests.support.dicomweb import ct_study
from tests.support.platform import wait_until

PASSWORD = "correct-horse-battery"  # the test users' password (tests/conftest.py)
TECHNOLOGIST = "technologist-user"


def sign_in(browser, platform, path: str = "/uploads/") -> None:
    browser.get(tenant_url(platform, "clinic_a", f"/accounts/login/?next={path}"))
    browser.find_element(By.ID, "id_username").send_keys(TECHNOLOGIST)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.ID, "drop-zone")))


def text_of(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


def test_a_folder_of_300_files_and_a_zip_with_a_bad_member_are_uploaded_with_reasons(platform, workers, tmp_path):
    folder = tmp_path / "CT-study"
    folder.mkdir()
    study = ct_study(300, size=8)
    for index, data in enumerate(study.files):
        (folder / f"IM{index:04d}.dcm").write_bytes(data)
    extra = ct_study(2, size=8)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("series/a.dcm", extra.files[0])
        archive.writestr("series/b.dcm", extra.files[1])
        archive.writestr("series/report.txt", b"typed notes, not an image")
    zip_path = tmp_path / "extra.zip"
    zip_path.write_bytes(buffer.getvalue())

    with chromium(1440, 900) as browser:
        sign_in(browser, platform)
        wait = WebDriverWait(browser, 180)
        browser.find_element(By.ID, "pick-folder").send_keys(str(folder))
        wait.until(lambda driver: "of 300 files" in text_of(driver, "counts"))
        browser.find_element(By.ID, "pick-files").send_keys(str(zip_path))
        wait.until(lambda driver: "of 301 files" in text_of(driver, "counts"))
        seen = browser.execute_script("return [document.getElementById('overall').value, document.getElementById('overall').max];")
        assert seen[1] > 1
        rows = browser.find_elements(By.CSS_SELECTOR, "#file-list .file-row:not([hidden])")
        assert 0 < len(rows) < 40  # only the rows in view are drawn
        screenshot(browser, "upload_page_progress")
        wait.until(expected_conditions.visibility_of_element_located((By.ID, "results")))
        screenshot(browser, "upload_page_results")

        assert text_of(browser, "total-stored") == "302"
        assert text_of(browser, "total-duplicate") == "0"
        assert text_of(browser, "total-refused") == "1"
        refused = browser.find_elements(By.CSS_SELECTOR, "#refused tbody tr")
        assert len(refused) == 1
        assert refused[0].find_elements(By.TAG_NAME, "td")[0].text == "extra.zip › series/report.txt"
        assert refused[0].find_elements(By.TAG_NAME, "td")[1].text.startswith(
            "Not a readable DICOM file: it is not DICOM, it is cut short, or it is damaged.")
        studies = text_of(browser, "studies")
        assert f"{study.study_instance_uid}: 300 images stored" in studies
        assert f"{extra.study_instance_uid}: 2 images stored" in studies


def test_the_page_is_usable_on_a_phone(platform, workers, tmp_path):
    study = ct_study(3, size=8)
    paths = []
    for index, data in enumerate(study.files):
        path = tmp_path / f"IM{index}.dcm"
        path.write_bytes(data)
        paths.append(str(path))
    (tmp_path / "IM0-copy.dcm").write_bytes(study.files[0])
    paths.append(str(tmp_path / "IM0-copy.dcm"))

    with chromium(390, 844) as browser:
        # Headless Chromium keeps windows at least 500 px wide: emulate the phone's viewport instead.
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        sign_in(browser, platform)
        assert browser.execute_script("return window.innerWidth") == 390
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        screenshot(browser, "upload_page_phone_empty")
        browser.find_element(By.ID, "pick-files").send_keys("\n".join(paths))
        WebDriverWait(browser, 120).until(expected_conditions.visibility_of_element_located((By.ID, "results")))
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        screenshot(browser, "upload_page_phone_results")
        assert (text_of(browser, "total-stored"), text_of(browser, "total-duplicate")) == ("3", "1")
        duplicate = browser.find_element(By.CSS_SELECTOR, "#duplicates tbody tr").text
        assert study.study_instance_uid in duplicate


def transfer_rows(platform, name: str) -> list[tuple[int, int, list[str], str]]:
    from apps.uploads.models import UploadTransfer

    with platform.schema("clinic_a"):
        return list(UploadTransfer.objects.filter(name=name).values_list("offset", "length", "part_keys", "status"))


def piece_offset(key: str) -> int:
    return int(key.rsplit("/", 1)[1].split("-", 1)[0])


def test_an_upload_cut_off_by_a_closed_tab_resumes_from_the_servers_offset(platform, workers, tmp_path):
    study = ct_study(1, size=2600)  # one ~13 MB image: two pieces of the page's 8 MiB
    name = f"big-{study.study_instance_uid[-12:]}.dcm"
    path: Path = tmp_path / name
    path.write_bytes(study.files[0])

    with chromium(1440, 900) as browser:
        sign_in(browser, platform)
        # Slow the upload so the tab closes mid-file, after the first piece reached the server.
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 4 * 1024 * 1024})
        browser.find_element(By.ID, "pick-files").send_keys(str(path))
        wait_until(lambda: transfer_rows(platform, name) and transfer_rows(platform, name)[0][0] > 0,
                   timeout=60, message="the first piece to arrive")
        browser.get("about:blank")  # the tab is closed mid-transfer
        interrupted_at = transfer_rows(platform, name)[0][0]
        assert 0 < interrupted_at < len(study.files[0])

        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        browser.get(tenant_url(platform, "clinic_a", "/uploads/"))
        WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.ID, "drop-zone")))
        browser.find_element(By.ID, "pick-files").send_keys(str(path))
        WebDriverWait(browser, 30).until(lambda driver: "resumed" in text_of(driver, "file-list")
                                         or not driver.find_element(By.ID, "results").get_attribute("hidden"))
        WebDriverWait(browser, 120).until(expected_conditions.visibility_of_element_located((By.ID, "results")))
        screenshot(browser, "upload_page_resumed")
        assert text_of(browser, "total-stored") == "1"

    rows = transfer_rows(platform, name)
    assert len(rows) == 1  # the same transfer, not a second one from byte 0
    offset, length, part_keys, status = rows[0]
    assert (offset, length, status) == (len(study.files[0]), len(study.files[0]), "received")
    resumed_from = [piece_offset(key) for key in part_keys]
    assert resumed_from[0] == 0 and interrupted_at in resumed_from[1:]


def signed_in_http(platform, username: str):
    http = platform.http("clinic_a")
    http.get("/accounts/login/")
    answer = http.post("/accounts/login/", data={"username": username, "password": PASSWORD,
                                                 "csrfmiddlewaretoken": http.cookies["csrftoken"]},
                       allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return http


def test_the_page_speaks_simplified_chinese_to_a_chinese_browser(platform):
    http = signed_in_http(platform, TECHNOLOGIST)
    page = http.get("/uploads/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200
    assert page.headers["Content-Language"] == "zh-hans"
    assert "<h1>上传检查</h1>" in page.text
    config = json.loads(re.search(r'<script id="upload-config" type="application/json">(.*?)</script>', page.text).group(1))
    assert config["reasons"]["cannot_understand"] == "不是可读取的 DICOM 文件：它不是 DICOM、文件不完整（被截断）或已损坏。"


def test_the_page_loads_its_scripts_same_origin_under_the_csp(platform):
    http = signed_in_http(platform, TECHNOLOGIST)
    page = http.get("/uploads/")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    library = http.get("/static/vendor/tus-js-client/tus.min.js")
    assert library.status_code == 200 and "tus" in library.text[:2000]


def test_a_referring_physician_may_not_open_the_upload_page(platform):
    http = signed_in_http(platform, "referring_physician-user")
    assert http.get("/uploads/").status_code == 403
