"""When the database does not answer, a real web process (gunicorn, the web role's start script)
answers in the protocol's JSON form: 503 with Retry-After for a request, and /readyz still gives its
checks, the database one failed. Never Django's HTML "Server Error (500)"."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

REPOSITORY = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def web_role(platform, **settings_overrides: str) -> Iterator[str]:
    """The web role (infra/start/web.sh, one gunicorn worker) on a port of its own; its base URL."""
    port = free_port()
    environment = platform.worker_environment()
    environment.update(
        HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="1", ALLOWED_HOSTS="*",
        PATH=f"{Path(os.sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}", **settings_overrides,
    )
    process = subprocess.Popen(
        ["bash", "infra/start/web.sh"], cwd=REPOSITORY, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or still loading its URL configurations
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def web_without_database(platform) -> Iterator[str]:
    """The web role started with a database address nothing listens on."""
    with web_role(platform, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing_listens_here",
                  WEB_THREADS="2") as base:
        yield base


def test_an_api_request_gets_a_json_503_with_retry_after(web_without_database):
    answer = requests.get(f"{web_without_database}/api/v1/me/", headers={"Host": "test-clinic-a.localhost"}, timeout=30)
    assert answer.status_code == 503
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["code"] == "service_unavailable"


def test_a_dicomweb_request_gets_a_json_503_too(web_without_database):
    answer = requests.get(
        f"{web_without_database}/dicomweb/studies", headers={"Host": "test-clinic-a.localhost"}, timeout=30
    )
    assert answer.status_code == 503
    assert answer.json()["code"] == "service_unavailable"


def test_readyz_says_the_database_failed_with_503(web_without_database):
    answer = requests.get(f"{web_without_database}/readyz", headers={"Host": "localhost"}, timeout=30)
    assert answer.status_code == 503
    assert answer.json()["status"] == "not_ready"
    assert answer.json()["checks"]["database"] == "failed"
    assert answer.json()["checks"]["broker"] == "ok"


def test_a_request_after_the_database_ended_the_web_servers_connection_is_answered(platform):
    """The connection a web thread keeps (CONN_MAX_AGE) was ended by a database restart: the next
    request's first statement, the tenant lookup by host, finds it health-checked and replaced
    (CONN_HEALTH_CHECKS), not a 503."""
    headers = {"Host": platform.host("clinic_a"),
               "Authorization": f"Bearer {platform.tokens[('clinic_a', 'technologist')]}"}
    with web_role(platform, WEB_THREADS="1") as base:
        assert requests.get(f"{base}/api/v1/me/", headers=headers, timeout=30).status_code == 200
        name = settings.DATABASES["default"]["NAME"]
        with psycopg.connect(host=settings.DATABASES["default"]["HOST"] or "127.0.0.1", user="postgres",
                             dbname="postgres", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                          " AND pid <> pg_backend_pid()", [name])
        connection.close()  # this process's own connection was ended too
        answer = requests.get(f"{base}/api/v1/me/", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
