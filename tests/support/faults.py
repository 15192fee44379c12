"""Faults with real processes: a worker node that crashes (its whole process group SIGKILLed) and is
replaced, with the reconciliation sweeps run by a real beat on short intervals; a task caught at a
known point by a table lock; a database that refuses connections for a while.

`CrashPlatform` is a broker-outage platform (private redis-server, web server, outbox relay, worker;
tests/support/broker_outage.py) plus a beat, in processes whose settings make the sweeps act within
seconds. It lives for one test module: its sweeps act on every tenant of the shared test database.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import connection

from tests.support.broker_outage import BrokerOutage, _start_process, start_broker_outage_platform
from tests.support.platform import ManagedProcess, RunningWorker, TestPlatform, start_worker, wait_until

# Sweeps every 2 s; an upload, film or AI attempt taken for stalled or lost after a few seconds.
FAST_SWEEPS = {
    "UPLOADS_RESUME_STALLED_EVERY_SECONDS": "2", "UPLOAD_PROCESSING_STALLED_SECONDS": "3",
    "FILMS_RECONCILE_EVERY_SECONDS": "2", "FILM_STALLED_SECONDS": "3",
    "AI_JOBS_RESEND_EVERY_SECONDS": "2", "AI_LOST_ATTEMPT_GRACE_SECONDS": "2",
    # Less background rendering competing with the work under test on a small machine.
    "ARCHIVE_WARM_RENDERED_FRAMES": "false",
}


@dataclass
class CrashPlatform:
    outage: BrokerOutage
    beat: ManagedProcess
    queues: list[str]
    workers_started: int = 1

    @property
    def platform(self) -> TestPlatform:
        return self.outage.platform

    @property
    def worker(self) -> RunningWorker:
        return self.outage.worker

    def crash_worker(self) -> None:
        """The worker node dies: main process and pool SIGKILLed together, nothing acknowledged or given back."""
        self.outage.worker.crash()

    def start_new_worker(self) -> RunningWorker:
        self.workers_started += 1
        self.outage.worker = start_worker(self.outage.environment, queues=self.queues,
                                          hostname=f"crash-{self.workers_started}", own_process_group=True)
        return self.outage.worker

    def stop(self) -> None:
        self.beat.stop()
        self.outage.stop()


def start_crash_platform(platform: TestPlatform, *, queues: list[str]) -> CrashPlatform:
    outage = start_broker_outage_platform(platform, queues=queues, name="crash", settings_overrides=FAST_SWEEPS,
                                          worker_own_process_group=True)
    try:
        beat = _start_process("crash-beat", [
            sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
            "-s", str(outage.broker.folder / "beat-schedule"),
        ], outage.environment)
        wait_until(lambda: "beat: Starting" in beat.log() or beat.process.poll() is not None, timeout=60,
                   message="the crash platform's beat")
        assert beat.process.poll() is None, beat.log()
    except BaseException:
        outage.stop()
        raise
    return CrashPlatform(outage=outage, beat=beat, queues=queues)


def _database_parameters(dbname: str | None = None) -> dict[str, object]:
    database = settings.DATABASES["default"]
    return {"host": database["HOST"] or "127.0.0.1", "port": database["PORT"] or 5432, "user": database["USER"],
            "dbname": dbname or database["NAME"]}


@contextlib.contextmanager
def table_locked(platform: TestPlatform, tenant_key: str, table: str) -> Iterator[None]:
    """An ACCESS EXCLUSIVE lock on one of a tenant's tables, from a connection of the test's own: a
    task that reaches the table waits there, at a known point, until the block ends."""
    schema = platform.tenants[tenant_key].schema_name
    locker = psycopg.connect(**_database_parameters())  # type: ignore[arg-type]
    try:
        locker.execute(f'LOCK TABLE "{schema}"."{table}" IN ACCESS EXCLUSIVE MODE')
        yield
    finally:
        with contextlib.suppress(psycopg.OperationalError):  # a database outage in the block ended it already
            locker.rollback()
        locker.close()


@contextlib.contextmanager
def database_refusing_connections() -> Iterator[None]:
    """The test database is out for the block: new connections refused and every open one ended
    (the shared PostgreSQL server and its other databases go on). The test process reconnects after."""
    name = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(**_database_parameters("postgres"), autocommit=True) as admin:  # type: ignore[arg-type]
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
                          " AND pid <> pg_backend_pid()", [name])
            connection.close()
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            connection.close()


def database_out_for(seconds: float, *, worker: RunningWorker, until_retried: re.Pattern[str]) -> None:
    """The database refuses connections for `seconds`, ending every open one (a task waiting on a
    `table_locked` lock meets the outage mid-work); the worker must log `until_retried` within them."""
    with database_refusing_connections():
        began = time.monotonic()
        wait_until(lambda: until_retried.search(worker.log()), timeout=seconds,
                   message=f"the worker to meet the outage and log {until_retried.pattern!r}")
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))
