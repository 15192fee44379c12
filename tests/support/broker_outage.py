"""A platform whose broker a test may stop: a private redis-server (never the shared one), and a
web server, a Celery worker and the outbox relay of their own, all pointed at it.

The session's usual live server runs inside the test process and publishes to the shared broker,
so a broker outage needs processes of its own: `BrokerOutage.platform` is the usual `TestPlatform`
(same database, tenants, tokens and S3) reached through the private web server instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from tests.support.dicomweb import parse_multipart
from tests.support.platform import (
    ARTIFACTS_DIR,
    REPO_ROOT,
    ManagedProcess,
    RunningWorker,
    TestPlatform,
    start_worker,
    wait_until,
)

# Seconds an unsent task waits for the relay in these tests (10 by default), and between passes.
RELAY_AFTER_SECONDS = "1"
RELAY_INTERVAL_SECONDS = "0.3"


class PrivateRedis:
    """A redis-server on a unix socket in a folder of its own, stopped and started by the test."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ic-broker-"))
        self.socket_path = self.folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket_path}"

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "the private broker already runs"
        executable = shutil.which("redis-server")
        assert executable, "redis-server is needed for the broker outage tests"
        self.process = subprocess.Popen(
            [executable, "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=20, message="the private redis-server to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        wait_until(lambda: not self.answers(), timeout=10, message="the private redis-server to stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_process(name: str, command: list[str], env: dict[str, str]) -> ManagedProcess:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    log_path = ARTIFACTS_DIR / f"{name}.log"
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    return ManagedProcess(name=name, process=process, log_path=log_path)


@dataclass
class BrokerOutage:
    broker: PrivateRedis
    platform: TestPlatform
    web: ManagedProcess
    relay: ManagedProcess
    worker: RunningWorker
    environment: dict[str, str] = dataclasses.field(default_factory=dict)

    def worker_idle(self) -> bool:
        """Nothing waiting on the worker's queues and every task it received has finished."""
        client = redis.Redis(unix_socket_path=str(self.broker.socket_path), socket_timeout=2)
        if any(client.llen(queue) for queue in self.worker.queues):
            return False
        log = self.worker.log()
        received = set(re.findall(r"\[([0-9a-f-]{36})\] received", log))
        finished = set(re.findall(r"\[([0-9a-f-]{36})\] (?:succeeded|failed|retry|raised)", log))
        return received <= finished

    @contextlib.contextmanager
    def broker_down(self) -> Iterator[None]:
        """The private broker stopped for the block, and started again after it (even on failure).

        It is stopped only once the worker is idle: kombu's Redis transport ends the worker
        ("Unrecoverable error: AttributeError ... 'hostname'") when the connection drops while it
        gives back unacknowledged messages. A supervisor restarts a worker in a deployment (and
        acks_late redelivers); these tests are about the hand-off, not that defect."""
        wait_until(self.worker_idle, timeout=120, message="the outage worker to be idle")
        self.broker.stop()
        try:
            yield
        finally:
            if not self.broker.answers():
                self.broker.start()

    def stop(self) -> None:
        for process in (self.web, self.relay):
            process.stop()
        self.worker.stop()
        self.broker.remove()


def start_broker_outage_platform(platform: TestPlatform, *, queues: list[str], name: str = "outage",
                                 settings_overrides: dict[str, str] | None = None,
                                 worker_own_process_group: bool = False) -> BrokerOutage:
    """Start the private broker, then web server, relay and worker on it; whatever started is
    stopped again if a later step fails (a stray relay would take the next run's rows).
    `settings_overrides` go into every process's environment; `name` prefixes their logs."""
    broker = PrivateRedis()
    broker.start()
    started: list[ManagedProcess] = []
    try:
        env = platform.worker_environment()
        env.update({
            "CELERY_BROKER_URL": broker.url, "ALLOWED_HOSTS": "*", "PYTHONUNBUFFERED": "1",
            "OUTBOX_RELAY_AFTER_SECONDS": RELAY_AFTER_SECONDS, **(settings_overrides or {}),
        })
        port = _free_port()
        web = _start_process(f"{name}-web", [
            sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--threads", "4", "--worker-class", "gthread", "--timeout", "120",
            "--no-control-socket",
        ], env)
        started.append(web)
        relay = _start_process(f"{name}-relay", [
            sys.executable, "manage.py", "outbox_relay", "--interval", RELAY_INTERVAL_SECONDS,
        ], env)
        started.append(relay)
        base_url = f"http://127.0.0.1:{port}"

        def web_answers() -> bool:
            if web.process.poll() is not None:
                raise RuntimeError(f"the private web server exited:\n{web.log()}")
            try:
                return requests.get(f"{base_url}/healthz", headers={"Host": "localhost"}, timeout=10).status_code == 200
            except requests.RequestException:
                return False

        wait_until(web_answers, timeout=60, message="the private web server")
        wait_until(lambda: "outbox relay: running" in relay.log(), timeout=60, message="the outbox relay")
        worker = start_worker(env, queues=queues, hostname=name, own_process_group=worker_own_process_group)
    except BaseException:
        for process in started:
            process.stop()
        broker.remove()
        raise
    return BrokerOutage(broker=broker, platform=dataclasses.replace(platform, base_url=base_url), web=web,
                        relay=relay, worker=worker, environment=env)

ORIGINALS = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def originals_by_sop_instance_uid(http: requests.Session, datasets: list[Any]) -> dict[str, bytes]:
    """Each instance retrieved alone (WADO-RS, original transfer syntax), by its SOP Instance UID;
    an instance that does not come back is missing from the answer."""
    found: dict[str, bytes] = {}
    for dataset in datasets:
        path = (f"/dicomweb/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
                f"/instances/{dataset.SOPInstanceUID}")
        response = http.get(path, headers={"Accept": ORIGINALS})
        if response.status_code == 200:
            [(_, content)] = parse_multipart(response)
            found[str(dataset.SOPInstanceUID)] = content
    return found


def outbox_rows(platform: TestPlatform, *, task_name: str, tenant_key: str) -> list[Any]:
    """The outbox rows of one task for one tenant, oldest first."""
    from tenants.models import OutboxTask

    with platform.schema():
        return list(OutboxTask.objects.filter(
            task_name=task_name, schema_name=platform.tenants[tenant_key].schema_name,
        ).order_by("created_at"))
