"""The README's first command, end to end: the launcher on the embedded default (its own PostgreSQL,
Redis and object folder; nothing configured), with the demo tenants, tokens and sample studies, then
a clean stop. Runs in a private data folder on a free port, so a developer's launcher is untouched."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.platform import wait_until

REPOSITORY = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 300
CONFIGURATION_VARIABLES = (
    "DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND", "STORAGE_ROOT", "S3_ENDPOINT_URL",
    "S3_BUCKET", "DJANGO_SETTINGS_MODULE",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningLauncher:
    process: subprocess.Popen[str]
    port: int
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"launcher never printed {pattern!r}; output:\n{self.output()[-4000:]}")

    def get(self, host: str, path: str, token: str) -> requests.Response:
        return requests.get(
            f"http://127.0.0.1:{self.port}{path}", headers={"Host": host, "Authorization": f"Bearer {token}"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLauncher]:
    environment = {key: value for key, value in os.environ.items() if key not in CONFIGURATION_VARIABLES}
    port = free_port()
    data_dir = tmp_path_factory.mktemp("launcher-data")
    environment = {key: value for key, value in environment.items() if key not in {"SECRET_KEY", "HOST", "DEBUG"}}
    environment.update(IMAGING_CLOUD_DATA_DIR=str(data_dir), PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "launcher"], cwd=REPOSITORY, env=environment, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    running = RunningLauncher(process=process, port=port, data_dir=data_dir)

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.lines.append(line.rstrip("\n"))

    threading.Thread(target=collect, daemon=True).start()
    yield running
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def clinic_token(launcher: RunningLauncher) -> str:
    match = launcher.wait_for_line(r"Try: curl -H 'Authorization: Bearer (\S+)'", timeout=STARTUP_SECONDS)
    return match.group(1)


def test_the_demo_token_answers_on_the_demo_clinic_domain(launcher: RunningLauncher, clinic_token: str) -> None:
    response = launcher.get("demo-clinic.localhost", "/api/v1/me/", clinic_token)

    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == {"slug": "demo-clinic", "kind": "clinic"}


def test_the_demo_clinic_archive_holds_the_sample_studies(launcher: RunningLauncher, clinic_token: str) -> None:
    response = launcher.get("demo-clinic.localhost", "/dicomweb/studies", clinic_token)

    assert response.status_code == 200, response.text
    assert len(response.json()) == 4


def test_the_demo_clinic_token_is_refused_on_the_demo_hospital(launcher: RunningLauncher, clinic_token: str) -> None:
    response = launcher.get("demo-hospital.localhost", "/api/v1/me/", clinic_token)

    assert response.status_code == 401


def test_the_demo_consult_waits_in_the_hospital_worklist(launcher: RunningLauncher, clinic_token: str) -> None:
    coordinator = launcher.wait_for_line(r"^demo-hospital\s+consult_coordinator\s+consult_coordinator\s+(\S+)",
                                         timeout=30).group(1)
    consult_id = launcher.wait_for_line(r"demo consult\s+(\S+)", timeout=30).group(1)
    response = launcher.get("demo-hospital.localhost", "/api/v1/consults/", coordinator)

    assert response.status_code == 200, response.text
    assert consult_id in [item["id"] for item in response.json()["results"]]


def test_the_printed_film_link_opens_with_its_code(launcher: RunningLauncher, clinic_token: str) -> None:
    match = launcher.wait_for_line(r"patient film link\s+http://[^/]+(/film/\S+)\s+access code (\d+)", timeout=30)
    path, code = match.group(1), match.group(2)
    session = requests.Session()
    base = f"http://127.0.0.1:{launcher.port}{path}"
    page = session.get(base, headers={"Host": "localhost"}, timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    opened = session.post(base, data={"csrfmiddlewaretoken": token.group(1), "code": code},
                          headers={"Host": "localhost"}, timeout=30)
    assert opened.status_code == 200
    sheet = wait_until(lambda: (answer := session.get(f"{base}/sheets/1.jpg", headers={"Host": "localhost"},
                                                      timeout=30)).status_code == 200 and answer,
                       timeout=60, message="the demo film to be rendered by the launcher's worker")
    assert sheet.content.startswith(b"\xff\xd8")


def test_the_web_server_listens_on_loopback_only(launcher: RunningLauncher, clinic_token: str) -> None:
    import ipaddress

    import psutil

    listening = {
        connection.laddr.ip for connection in psutil.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == launcher.port
    }
    assert listening, "nothing listens on the launcher's port"
    assert all(ipaddress.ip_address(address).is_loopback for address in listening), listening


def test_the_demo_shows_no_debug_pages(launcher: RunningLauncher, clinic_token: str) -> None:
    response = launcher.get("demo-clinic.localhost", "/no-such-page/", clinic_token)

    assert response.status_code == 404
    assert "URLconf" not in response.text
    assert "DEBUG = True" not in response.text


def test_the_demo_signs_with_a_random_key_kept_in_its_data_folder(launcher: RunningLauncher, clinic_token: str) -> None:
    import stat

    key_file = launcher.data_dir / "secret_key"

    assert len(key_file.read_text().strip()) >= 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_sigterm_stops_every_process_the_launcher_started(launcher: RunningLauncher, clinic_token: str) -> None:
    launcher.process.send_signal(signal.SIGTERM)

    assert launcher.process.wait(timeout=120) == 0
    launcher.wait_for_line(r"^\[launcher\] stopped$", timeout=10)
    with pytest.raises(requests.ConnectionError):
        launcher.get("demo-clinic.localhost", "/healthz", clinic_token)
