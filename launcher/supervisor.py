"""The launcher: one per data folder; starts the embedded services, migrates, loads the demo, runs the
worker, beat, relay and web through infra/start/*.sh, supervises them and stops them in order."""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import launcher
from config import embedded
from launcher.embedded_services import EmbeddedPostgres, embedded_redis_command, redis_answers
from launcher.processes import (
    MARKER_VARIABLE,
    Child,
    StartupFailed,
    StopRequested,
    StopSignals,
    kill_marked_processes,
    print_lock,
    say,
    stop_children,
)

LOCK_FILE = embedded.DATA_DIR / "launcher.lock"
PID_FILE = embedded.DATA_DIR / "launcher.pid"
START_SCRIPTS = embedded.BASE_DIR / "infra" / "start"
MANAGE_PY = embedded.BASE_DIR / "manage.py"
SHARED_QUEUES = ("ingest", "ai", "film", "workflow")  # only if `worker_queues` cannot answer

APP_STOP_SECONDS = 30.0  # a worker finishing its current task; acks_late redelivers anything cut short
SERVICE_STOP_SECONDS = 15.0
READY_SECONDS = 120.0


class DataFolderLock:
    """One launcher per data folder. The kernel drops the lock when its holder dies, however it dies."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        embedded.DATA_DIR.mkdir(parents=True, exist_ok=True)
        handle = LOCK_FILE.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def running_launcher_pid() -> int | None:
    try:
        return int(PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def clean_leftovers(postgres: EmbeddedPostgres) -> None:
    """Stop what a killed launcher of this data folder left behind. Call only while holding the lock."""
    postgres.stop_leftover()
    killed = kill_marked_processes(embedded.DATA_DIR)
    if killed:
        say(f"killed {killed} process(es) left by an earlier launcher")
    embedded.REDIS_SOCKET.unlink(missing_ok=True)
    PID_FILE.unlink(missing_ok=True)


class Launcher:
    def __init__(self) -> None:
        self.signals = StopSignals()
        self.postgres = EmbeddedPostgres(embedded.POSTGRES_DIR)
        self.environment = self._child_environment()
        self.redis: Child | None = None
        self.apps: list[Child] = []  # web, beat, worker and any one-off step still running
        self.embedded_postgres = not os.environ.get("DATABASE_URL")
        self.embedded_redis = not os.environ.get("CELERY_BROKER_URL")
        self.port = self.environment["PORT"]
        self.dimse_port = os.environ.get("DIMSE_PORT", "11112")
        self.platform_domain = os.environ.get("PLATFORM_DOMAIN", "localhost")

    @staticmethod
    def _child_environment() -> dict[str, str]:
        environment = dict(os.environ)
        environment.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        environment.setdefault("PORT", "8000")
        # The demo is reachable from this machine only, and shows no debug pages (docs/security.md);
        # HOST=0.0.0.0 opts in to other machines (then SECRET_KEY must be a real secret).
        environment.setdefault("HOST", "127.0.0.1")
        environment.setdefault("DEBUG", "false")
        environment.setdefault("BEAT_SCHEDULE_FILE", str(embedded.BEAT_SCHEDULE_FILE))
        environment["PYTHONUNBUFFERED"] = "1"
        environment[MARKER_VARIABLE] = str(embedded.DATA_DIR)
        # The start scripts call `gunicorn` and `celery`: use the ones beside this interpreter.
        environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
        if not os.environ.get("STORAGE_BACKEND"):
            environment["STORAGE_BACKEND"] = "filesystem"
            environment.setdefault("STORAGE_ROOT", str(embedded.OBJECTS_DIR))
        return environment

    def run(self) -> int:
        lock = DataFolderLock()
        if not lock.acquire():
            say(f"a launcher (pid {running_launcher_pid()}) already runs on {embedded.DATA_DIR}; "
                f"stop it with Ctrl-C in its terminal or `python -m launcher stop`")
            return 1
        self.signals.install()
        try:
            clean_leftovers(self.postgres)
            PID_FILE.write_text(f"{os.getpid()}\n")
            demo_output = self._start()
            self._announce(demo_output)
            return self._supervise()
        except StopRequested:
            return 0
        except StartupFailed as error:
            say(f"startup failed: {error}")
            return 1
        finally:
            self._shutdown()
            PID_FILE.unlink(missing_ok=True)
            lock.release()

    # start ---------------------------------------------------------------------------------------

    def _start(self) -> list[str]:
        if self.embedded_postgres:
            self.environment["DATABASE_URL"] = self.postgres.start()
        else:
            say("using DATABASE_URL from the environment")
        self.signals.check()
        if self.embedded_redis:
            self._start_redis()
            self.environment["CELERY_BROKER_URL"] = embedded.broker_url()
        else:
            say("using CELERY_BROKER_URL from the environment")
        if self.environment.get("STORAGE_BACKEND") == "filesystem":
            say(f"object storage: folder {self.environment.get('STORAGE_ROOT', embedded.OBJECTS_DIR)}")
        self._run_step("migrate", ["migrate_schemas", "--shared", "--noinput"])
        self._run_step("migrate", ["migrate_schemas", "--tenant", "--noinput"])
        demo_output = self._run_step("demo", ["demo", "--port", self.port], capture=True)
        queues = self._worker_queues()
        say(f"worker queues: {queues}")
        worker = self._start_app("worker", "worker.sh", {"QUEUES": queues, "WORKER_NAME": "worker"}, " ready.")
        beat = self._start_app("beat", "beat.sh", {}, "beat: Starting")
        relay = self._start_app("relay", "relay.sh", {}, "outbox relay: running")
        dimse = self._start_app("dimse", "dimse.sh", {"DIMSE_PORT": self.dimse_port}, "DIMSE listening on")
        web = self._start_app("web", "web.sh", {}, None)
        self._wait_until(self._web_ready, web, "the web server to answer /readyz")
        self._wait_until(worker.ready.is_set, worker, "the Celery worker")
        self._wait_until(beat.ready.is_set, beat, "Celery beat")
        self._wait_until(relay.ready.is_set, relay, "the outbox relay")
        self._wait_until(dimse.ready.is_set, dimse, "the DIMSE listener")
        return demo_output

    def _start_redis(self) -> None:
        embedded.REDIS_DIR.mkdir(parents=True, exist_ok=True)
        self.redis = Child("redis", embedded_redis_command(), self.environment)
        self._wait_until(lambda: redis_answers(embedded.REDIS_SOCKET), self.redis, "the embedded Redis")
        say(f"embedded Redis ready (socket {embedded.REDIS_SOCKET})")

    def _manage(self, arguments: Sequence[str]) -> list[str]:
        return [sys.executable, str(MANAGE_PY), *arguments]

    def _run_step(self, name: str, arguments: Sequence[str], *, capture: bool = False) -> list[str]:
        say(f"running manage.py {' '.join(arguments)}")
        step = Child(name, self._manage(arguments), self.environment, capture=capture)
        self.apps.append(step)
        while step.running:
            self.signals.check()
            time.sleep(0.1)
        step.wait_for_output()
        self.apps.remove(step)
        if step.process.returncode != 0:
            for line in step.captured:
                print(f"{name:>8} | {line}", flush=True)
            raise StartupFailed(f"manage.py {' '.join(arguments)} exited with {step.process.returncode}")
        return step.captured

    def _worker_queues(self) -> str:
        output = self._run_step("queues", ["worker_queues"], capture=True)
        queues = output[-1].strip() if output else ""
        return queues or ",".join(SHARED_QUEUES)

    def _start_app(self, name: str, script: str, extra: dict[str, str], ready_marker: str | None) -> Child:
        child = Child(name, ["bash", str(START_SCRIPTS / script)], {**self.environment, **extra},
                      ready_marker=ready_marker)
        self.apps.append(child)
        return child

    def _web_ready(self) -> bool:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/readyz", headers={"Host": self.platform_domain})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _wait_until(self, condition: Callable[[], bool], child: Child, what: str) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while not condition():
            self.signals.check()
            if not child.running:
                raise StartupFailed(f"{child.name} exited with {child.process.returncode} while waiting for {what}")
            if time.monotonic() > deadline:
                raise StartupFailed(f"timed out waiting for {what}")
            time.sleep(0.2)

    def _announce(self, demo_output: list[str]) -> None:
        with print_lock:
            print("", flush=True)
            print("=" * 100)
            print("Imaging Cloud is running.")
            print(f"  web        http://{self.platform_domain}:{self.port}/  (gunicorn on {self.environment['HOST']}:{self.port})")
            print(f"  dimse      DICOM listener on port {self.dimse_port} (each tenant's called AE title below)")
            if self.embedded_postgres:
                print(f"  database   embedded PostgreSQL, data in {embedded.POSTGRES_DIR}")
            if self.embedded_redis:
                print(f"  broker     embedded Redis on {embedded.REDIS_SOCKET}")
            print("")
            for line in demo_output:
                print(line)
            print("")
            print("To stop it, press Ctrl-C here (or run `.venv/bin/python -m launcher stop` in another terminal).")
            print("=" * 100, flush=True)

    # run and stop --------------------------------------------------------------------------------

    def _supervise(self) -> int:
        watched = [*self.apps, *([self.redis] if self.redis else [])]
        while True:
            if self.signals.stop_requested:
                return 0
            for child in watched:
                if not child.running:
                    say(f"{child.name} exited with {child.process.returncode}; stopping everything")
                    return 1
            time.sleep(0.5)

    def _shutdown(self) -> None:
        say("shutting down")
        stop_children(self.apps, seconds=APP_STOP_SECONDS, signals=self.signals)
        if self.redis is not None:
            stop_children([self.redis], seconds=SERVICE_STOP_SECONDS, signals=self.signals)
        if self.embedded_postgres:
            self.postgres.stop()
        leftovers = kill_marked_processes(embedded.DATA_DIR)
        if leftovers:
            say(f"killed {leftovers} leftover process(es)")
        say("stopped")


def stop_running_launcher() -> int:
    """`stop`: signal the running launcher and wait for it, or clean up after a killed one."""
    lock = DataFolderLock()
    if lock.acquire():
        try:
            clean_leftovers(EmbeddedPostgres(embedded.POSTGRES_DIR))
        finally:
            lock.release()
        say("no launcher was running; leftovers (if any) are stopped")
        return 0
    pid = running_launcher_pid()
    if pid is None:
        say("a launcher holds the lock but wrote no pid file; stop it with Ctrl-C in its terminal")
        return 1
    say(f"asking the launcher (pid {pid}) to stop")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + APP_STOP_SECONDS + 2 * SERVICE_STOP_SECONDS + 30
    while time.monotonic() < deadline:
        if lock.acquire():
            lock.release()
            say("stopped")
            return 0
        time.sleep(0.5)
    say("the launcher did not stop in time")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher", description=launcher.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["run", "stop"], default="run")
    arguments = parser.parse_args(argv)
    if arguments.command == "stop":
        return stop_running_launcher()
    return Launcher().run()
