"""The web role's logs (infra/start/web.sh: gunicorn's access log and Django's request warnings)
never hold a film link's token or a query value such as a QIDO PatientName. A real gunicorn serves
this session's database; its output is read back after real requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.films.support import FILMS, clinic_study, issue_link
from tests.support.platform import wait_until

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def live_server_database_access(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningWeb:
    port: int
    log_path: Path

    def get(self, host: str, path: str, **headers: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.port}{path}", headers={"Host": host, **headers}, timeout=30,
                            allow_redirects=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str) -> str:
        return wait_until(lambda: text in (log := self.log()) and log, timeout=20,
                          message=f"{text!r} in the web log")


@pytest.fixture(scope="module")
def web(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWeb]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("web") / "web.log"
    environment = platform.worker_environment()
    environment.update(PORT=str(port), WEB_CONCURRENCY="1", WEB_THREADS="2", PYTHONUNBUFFERED="1",
                       PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with log_path.open("w") as log:
        process = subprocess.Popen(["bash", "infra/start/web.sh"], cwd=REPOSITORY, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    running = RunningWeb(port=port, log_path=log_path)

    def answers() -> bool:
        assert process.poll() is None, running.log()
        try:
            return running.get("localhost", "/healthz").status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(answers, timeout=60, message="gunicorn to answer /healthz")
    yield running
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def film_link(platform: Any) -> Any:
    study = clinic_study(platform, slices=1)
    created = platform.http("clinic_a", "technologist").post(FILMS, json={"study_instance_uid": study.study_instance_uid})
    assert created.status_code == 201, created.text
    return issue_link(platform, created.json()["id"])


def test_the_access_log_shows_film_requests_without_their_token(web: RunningWeb, film_link: Any) -> None:
    page = web.get("localhost", film_link.path, Referer=f"http://localhost{film_link.path}")
    refused = web.get("localhost", f"{film_link.path}/sheets/1.jpg", Referer=f"http://localhost{film_link.path}")
    assert (page.status_code, refused.status_code) == (200, 403)

    log = web.wait_for_log('"GET /film/[redacted]/sheets/1.jpg HTTP/1.1" 403')

    assert '"GET /film/[redacted] HTTP/1.1" 200' in log
    assert '"http://localhost/film/[redacted]"' in log  # the referer, redacted too
    assert film_link.token not in log


def test_djangos_warning_for_a_refused_film_request_has_no_token(web: RunningWeb, film_link: Any) -> None:
    assert web.get("localhost", f"{film_link.path}/images.zip").status_code == 403

    log = web.wait_for_log("Forbidden: /film/[redacted]/images.zip")

    assert film_link.token not in log


def test_the_access_log_shows_qido_parameter_names_without_their_values(web: RunningWeb, platform: Any) -> None:
    answer = web.get(platform.host("clinic_a"), "/dicomweb/studies?PatientName=SECRETNAME*&PatientID=SECRET-ID-77",
                     Authorization=f"Bearer {platform.tokens[('clinic_a', 'technologist')]}")
    assert answer.status_code in (200, 204), answer.text

    log = web.wait_for_log("GET /dicomweb/studies?PatientName=[redacted]&PatientID=[redacted] HTTP/1.1")

    assert "SECRETNAME" not in log and "SECRET-ID-77" not in log
    assert platform.tokens[("clinic_a", "technologist")] not in log
