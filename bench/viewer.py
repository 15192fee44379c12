"""Embedded viewer benchmark: OHIF's route to the first image and to all frames of a 200-slice 512²
CT, in headless Debian Chromium, against the platform on loopback (docs/viewer.md, docs/benchmarks.md).

    sudo .venv/bin/python -m bench.viewer [--runs 10] [--slices 200]

One run: a private network namespace with only loopback (bench.netns); the platform as in
bench.dicomweb (fresh database, gunicorn, production settings, no Celery worker); the study stored
with STOW-RS; one Chromium signs in through the login page, then opens
`/viewer/viewer?StudyInstanceUIDs=…` `--runs` times (the first with an empty browser cache, the
others warm, as a reader's second study). Per run, from the navigation's start: first image = the
viewport's canvas first shows a non-blank picture (polled); all frames = the last WADO-RS frame
response has ended (Resource Timing). Server time = the union of the intervals in which the browser
waited for the server's first byte (requestStart → responseStart) of every request in the window;
browser time = the rest (downloading, parsing, running OHIF, decoding, drawing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench import netns
from bench.measure import latency_summary
from bench.platform_peer import HTTP_PORT, TENANT_DOMAIN, TENANT_SLUG, PlatformPeer
from tests.factories.dicom_factory import make_ct_series, to_part10_bytes
from tests.support.browser import CHROMIUM_FLAGS

TARGET_FIRST_IMAGE_P95_MS = 500.0
PASSWORD = "bench-viewer-password-1"
RESULTS = Path(__file__).resolve().parent / "results"
CANVAS_DRAWN = """
const canvas = [...document.querySelectorAll('.cornerstone-viewport-element canvas')]
  .sort((a, b) => b.width * b.height - a.width * a.height)[0];
if (!canvas || !canvas.width) return null;
const copy = document.createElement('canvas'); copy.width = canvas.width; copy.height = canvas.height;
const context = copy.getContext('2d'); context.drawImage(canvas, 0, 0);
const pixels = context.getImageData(0, 0, copy.width, copy.height).data;
const seen = new Set();
for (let i = 0; i < pixels.length; i += 4 * 97) { seen.add(pixels[i]); if (seen.size > 8) return performance.now(); }
return null;
"""
TIMINGS = """
return performance.getEntriesByType('resource').map(e => ({name: e.name, requestStart: e.requestStart,
  responseStart: e.responseStart, responseEnd: e.responseEnd}));
"""


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def server_wait_ms(timings: list[dict[str, float]], until: float) -> float:
    """The union of the server-wait intervals (request sent → first byte) that begin before `until`."""
    intervals = sorted((t["requestStart"], min(t["responseStart"], until)) for t in timings
                       if t["requestStart"] > 0 and t["requestStart"] < until)
    total, end = 0.0, 0.0
    for start, stop in intervals:
        start = max(start, end)
        if stop > start:
            total += stop - start
            end = stop
    return total


def multipart(files: list[bytes]) -> tuple[bytes, str]:
    boundary = "bench-viewer-boundary"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n"
                    for f in files) + b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def sign_in(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/accounts/login/")
    driver.find_element(By.ID, "id_username").send_keys("bench")
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def measure_once(driver: Any, url: str, slices: int, timeout: float = 180.0) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + timeout
    first_image = None
    while first_image is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no image drawn")
        first_image = driver.execute_script(CANVAS_DRAWN)
    frames: list[dict[str, float]] = []
    while len(frames) < slices:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(frames)} of {slices} frames loaded")
        timings = driver.execute_script(TIMINGS)
        frames = [t for t in timings if "/frames/" in t["name"] and t["responseEnd"] > 0]
        time.sleep(0.05)
    all_frames = max(t["responseEnd"] for t in frames)
    return {"first_image_ms": first_image, "all_frames_ms": all_frames,
            "first_image_server_ms": server_wait_ms(timings, first_image),
            "all_frames_server_ms": server_wait_ms(timings, all_frames),
            "requests_before_first_image": sum(1 for t in timings if 0 < t["requestStart"] < first_image)}


def summarise(samples: list[dict[str, float]]) -> dict[str, Any]:
    return {key: latency_summary([sample[key] / 1000 for sample in samples])
            for key in ("first_image_ms", "first_image_server_ms", "all_frames_ms", "all_frames_server_ms")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--slices", type=int, default=200)
    arguments = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    load = os.getloadavg()
    namespace = f"{netns.NAMESPACE_PREFIX}{os.getpid()}"
    with contextlib.ExitStack() as stack:
        netns.create(namespace)
        stack.callback(netns.delete, namespace)
        netns.enter(namespace)
        work = Path(tempfile.mkdtemp(prefix=f"icbench-{os.getpid()}-"))
        stack.callback(shutil.rmtree, work, True)
        # Plain HTTP on loopback: the production settings would redirect the browser to HTTPS; the base
        # settings are the same application without the HTTPS hardening (DEBUG off).
        peer_process = PlatformPeer(work / "platform", settings="config.settings.base", log=log)
        stack.callback(peer_process.drop_database)
        stack.callback(peer_process.stop)
        peer = peer_process.start()
        peer_process.manage("shell", "-c", (
            "from django_tenants.utils import tenant_context; from tenants.models import Tenant; "
            "from apps.accounts.models import User\n"
            f"with tenant_context(Tenant.objects.get(slug='{TENANT_SLUG}')):\n"
            f"    user = User.objects.get(username='bench'); user.set_password('{PASSWORD}'); user.save()"))
        log(f"generating and storing a {arguments.slices}-slice 512x512 CT ...")
        series = make_ct_series(arguments.slices, rows=512, columns=512)
        body, content_type = multipart([to_part10_bytes(dataset) for dataset in series])
        stored = requests.post(peer.url("/studies"), data=body, timeout=600,
                               headers={**peer.headers, "Content-Type": content_type})
        assert stored.status_code == 200, stored.text[:500]
        study = str(series[0].StudyInstanceUID)

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for flag in [*CHROMIUM_FLAGS, "--window-size=1440,900", f"--user-data-dir={work / 'chromium'}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        stack.callback(driver.quit)
        # Resource Timing keeps 250 entries by default: fewer than OHIF's files plus 200 frames.
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                               {"source": "performance.setResourceTimingBufferSize(10000);"})
        base = f"http://{TENANT_DOMAIN}:{HTTP_PORT}"
        sign_in(driver, base)
        url = f"{base}/viewer/viewer?StudyInstanceUIDs={study}"
        samples = []
        for run in range(arguments.runs):
            sample = measure_once(driver, url, arguments.slices)
            log(f"run {run + 1}: " + json.dumps({k: round(v, 1) for k, v in sample.items()}))
            samples.append(sample)
        gunicorn_log = (work / "platform" / "gunicorn.log")
        errors = re.findall(r"\bERROR\b.*", gunicorn_log.read_text()) if gunicorn_log.exists() else []

    cold, warm = samples[0], samples[1:]
    result = {"stamp": datetime.now(UTC).isoformat(), "slices": arguments.slices, "runs": arguments.runs,
              "load_average_before": load, "cpus": os.cpu_count(), "cold": cold, "warm": summarise(warm),
              "server_errors": errors[:5]}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"viewer-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2))
    warm_first = result["warm"]["first_image_ms"]
    print(json.dumps(result, indent=2))
    verdict = "meets" if warm_first["p95_ms"] <= TARGET_FIRST_IMAGE_P95_MS else "misses"
    print(f"first image p95 (warm) {warm_first['p95_ms']:.0f} ms: {verdict} the {TARGET_FIRST_IMAGE_P95_MS:.0f} ms target;"
          f" written to {path}")


if __name__ == "__main__":
    main()
