"""Headless Debian Chromium driven by Selenium, for page tests; screenshots go to tests/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-dev-shm-usage", "--no-proxy-server", "--host-resolver-rules=MAP * 127.0.0.1"]


@contextmanager
def chromium(width: int, height: int, *, language: str = "en-US", network_log: bool = False) -> Iterator[Any]:
    """`network_log`: keep DevTools' network events, read with `requested_urls(driver)`."""
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--lang={language}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """The URLs the page requested since the last call (a driver started with `network_log=True`)."""
    import json

    messages = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [message["params"]["request"]["url"] for message in messages
            if message["method"] == "Network.requestWillBeSent"]


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def tenant_url(platform: Any, tenant_key: str | None, path: str) -> str:
    """The live server's URL on a tenant's domain (None: the platform's public domain)."""
    port = platform.base_url.rsplit(":", 1)[1]
    host = platform.domains[tenant_key] if tenant_key else "localhost"
    return f"http://{host}:{port}{path}"


def emulate_viewport(driver: Any, width: int, height: int) -> None:
    """Lay the page out at exactly width×height CSS pixels, as a phone would (a headless window has a
    minimum width of about 500 px, so --window-size alone cannot give a 390 px phone)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
