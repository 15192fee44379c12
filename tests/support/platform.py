"""A running test platform: tenants, users with tokens, a live HTTP server, S3 over HTTP, workers.

Tests talk to it the way clients do (HTTP with a Host header and a Bearer token), and reach the
database through `platform.schema(...)` when they need to look behind the API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"

# The tenants every session has; more can be provisioned by a test that needs its own.
TENANT_SPECS = {
    "clinic_a": {"slug": "test-clinic-a", "kind": "clinic", "deployment": "public_cloud", "plan": "standard"},
    "hospital_b": {"slug": "test-hospital-b", "kind": "hospital", "deployment": "dedicated_cloud", "plan": None},
    "clinic_c": {"slug": "test-clinic-c", "kind": "clinic", "deployment": "public_cloud", "plan": "standard"},
}
ROLES_BY_KIND = {
    "clinic": ["clinic_admin", "technologist", "referring_physician"],
    "hospital": ["hospital_admin", "consult_coordinator", "radiologist"],
}


class TenantHttp(requests.Session):
    """requests.Session bound to one tenant's domain on the live server, optionally with a token."""

    def __init__(self, base_url: str, host: str, token: str | None) -> None:
        super().__init__()
        self.base_url = base_url
        self.host = host
        self.headers["Host"] = host
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", 60)
        return super().request(method, url, *args, **kwargs)


@dataclass
class TestPlatform:
    base_url: str
    db_blocker: Any
    tenants: dict[str, Any] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    operator_token: str = ""
    s3_endpoint: str = ""

    def host(self, tenant_key: str) -> str:
        return self.domains[tenant_key]

    def http(self, tenant_key: str, role: str | None = None, *, token: str | None = None) -> TenantHttp:
        """A client on the tenant's domain; `role` picks that role's token, `token` any token."""
        if role is not None:
            token = self.tokens[(tenant_key, role)]
        return TenantHttp(self.base_url, self.domains[tenant_key], token)

    def operator_http(self, *, token: str | None = None) -> TenantHttp:
        return TenantHttp(self.base_url, "localhost", token if token is not None else self.operator_token)

    def url(self, path: str) -> str:
        return self.base_url + path

    @contextlib.contextmanager
    def schema(self, tenant_key: str | None = None) -> Iterator[None]:
        """Database access in a tenant's schema (or the public schema when None)."""
        from tenants.context import public_entered, tenant_entered

        with self.db_blocker.unblock():
            if tenant_key is None:
                with public_entered():
                    yield
                return
            with tenant_entered(self.tenants[tenant_key]):
                yield

    def worker_environment(self) -> dict[str, str]:
        """Environment for subprocesses (workers, commands) that must see this platform's database and storage."""
        database = settings.DATABASES["default"]
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": (
                    f"postgresql://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
                    f"/{database['NAME']}"
                ),
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                "STORAGE_BACKEND": settings.STORAGE_BACKEND,
                "S3_ENDPOINT_URL": settings.S3_ENDPOINT_URL or "",
                "S3_ACCESS_KEY_ID": settings.S3_ACCESS_KEY_ID or "",
                "S3_SECRET_ACCESS_KEY": settings.S3_SECRET_ACCESS_KEY or "",
                "S3_BUCKET": settings.S3_BUCKET,
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        return env


def unique_suffix() -> str:
    return uuid.uuid4().hex[:10]


@dataclass
class ManagedProcess:
    """A process a test started (worker, web server, relay), its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # A process started in a session of its own (`own_process_group`): its children share its group.
    def freeze(self) -> None:
        """SIGSTOP the whole process group: nothing in it runs until `thaw`."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def crash(self) -> None:
        """SIGKILL the whole process group at once, as a node crash does: no shutdown, no acknowledgement."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)


@dataclass
class RunningWorker(ManagedProcess):
    hostname: str = ""
    queues: list[str] = field(default_factory=list)


def start_worker(env: dict[str, str], *, queues: list[str], hostname: str, concurrency: int = 2,
                 own_process_group: bool = False) -> RunningWorker:
    """Start a real `celery -A config worker` on the given queues and wait until it is ready;
    `own_process_group` puts it and its pool in a group of their own, for `freeze` and `crash`."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    log_path = ARTIFACTS_DIR / f"worker-{hostname}.log"
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
        "-Q", ",".join(queues), "-n", f"{hostname}@%h", "--concurrency", str(concurrency),
        "--pool", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    log_handle = log_path.open("wb")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_handle, stderr=subprocess.STDOUT,
                               start_new_session=own_process_group)
    worker = RunningWorker(name=hostname, process=process, hostname=hostname, queues=queues, log_path=log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Celery worker {hostname} exited early:\n{worker.log()}")
        if " ready." in worker.log():
            return worker
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"Celery worker {hostname} did not become ready:\n{worker.log()}")


def wait_until(predicate: Any, *, timeout: float = 30.0, interval: float = 0.2, message: str = "condition") -> Any:
    """Poll until predicate() returns something truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")
