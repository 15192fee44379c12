"""A small cluster on one machine: two web nodes and two worker nodes behind haproxy (docs/benchmarks.md).

Each node is started with the same start scripts a container runs (`infra/start/web.sh`,
`infra/start/worker.sh`, `infra/start/beat.sh`), each in its own session, so its process group is
the node: `kill_node` sends SIGKILL to the whole group, as a machine that loses power or a pod that
is OOM-killed would lose it, with no chance to finish a request or acknowledge a task.

Shared services, all private to the run:

- PostgreSQL: a database `icbench_<pid>` on the machine's server (127.0.0.1:5432), dropped at the end;
- Redis (the Celery broker): a private `redis-server` on a free port, never the machine's 6379;
- S3: moto's server (`moto_server`, an S3-compatible HTTP endpoint) on a free port, in memory;
- haproxy (Debian package `haproxy`, installed with apt-get if missing): round-robin over the two
  web nodes, health checks on /readyz, connection failures retried on the other node.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests
from psycopg import sql

from bench.platform_peer import DATABASE_PREFIX, run_manage
from bench.processes import ManagedProcess, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
VIRTUALENV_BIN = Path(sys.executable).parent
POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
TENANT_SLUG = "bench-clinic"
TENANT_DOMAIN = "bench-clinic.localhost"
S3_BUCKET = "imaging-cloud-bench"
HAPROXY_BINARY = "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", dbname="postgres",
                           autocommit=True)


def ensure_haproxy_installed(log=print) -> str:  # type: ignore[no-untyped-def]
    """haproxy's version line, installing the Debian package first if it is missing (needs root)."""
    if not Path(HAPROXY_BINARY).exists():
        log("installing haproxy with apt-get ...")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "haproxy"], check=True,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    result = subprocess.run([HAPROXY_BINARY, "-v"], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[0]


def haproxy_configuration(*, port: int, web_ports: list[int], admin_socket: Path) -> str:
    """Round-robin over the web nodes; a node is out after 2 failed /readyz checks 1 s apart, back after 2 good.

    `retry-on conn-failure` with `option redispatch` sends a request whose connection was refused to
    the other node: what a node that is already down costs a client is one connect attempt, not an
    error. A request already sent to a node that dies is not retried (haproxy cannot know whether a
    POST was processed); the client sees 502 and decides.
    """
    servers = "\n".join(f"    server web{index + 1} 127.0.0.1:{web_port} check"
                        for index, web_port in enumerate(web_ports))
    return f"""global
    maxconn 512
    log stdout format raw local0
    stats socket {admin_socket} mode 600 level operator

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout http-request 60s
    # /readyz answers within its own 2 s budget (READINESS_CHECK_TIMEOUT_SECONDS); a busy node is not a dead one.
    timeout check 3s
    retries 3
    retry-on conn-failure
    option redispatch 1

frontend cluster
    bind 127.0.0.1:{port}
    default_backend web_nodes

backend web_nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server inter 1s fall 2 rise 2
{servers}
"""


_HAPROXY_REQUEST_LINE = re.compile(
    r"\] \S+ \S+/(?P<server>\S+) \S+ (?P<status>-?\d+) \d+ \S+ \S+ (?P<termination>\S{4}) "
    r"\d+/\d+/\d+/\d+/(?P<redispatched>\+?)(?P<retries>\d+) "
)


def haproxy_log_summary(log_text: str) -> dict[str, object]:
    """What haproxy saw: health-check state changes, requests sent to another node after a refused
    connection (`+` before the retry count), and answers that were not 2xx, with their termination
    state (e.g. `SH--`: the server closed during the response headers). With `option dontlog-normal`
    only requests that were retried, redispatched or failed are logged."""
    state_changes = [line.split(", reason")[0] for line in log_text.splitlines()
                     if line.startswith("Server web_nodes/")]
    redispatched = retried = 0
    failures: dict[str, int] = {}
    for match in _HAPROXY_REQUEST_LINE.finditer(log_text):
        redispatched += bool(match["redispatched"])
        retried += int(match["retries"]) > 0
        if not match["status"].startswith("2"):
            key = f"{match['status']} {match['termination']} via {match['server']}"
            failures[key] = failures.get(key, 0) + 1
    return {"state_changes": state_changes, "redispatched": redispatched, "retried": retried,
            "failed_answers": failures}


_CELERY_TASK_LINE = re.compile(r"Task [\w.]+\[(?P<id>[0-9a-f-]{36})\] (?P<event>received|succeeded|raised)")


def tasks_interrupted(*, killed_life_log: str, after_kill_logs: str) -> dict[str, bool]:
    """Tasks the killed worker had received and not finished when it died, each with whether some
    worker finished it later (`succeeded` or `raised` after the kill, i.e. on a new delivery once the
    visibility timeout gave the unacknowledged message back to the queue)."""
    received: set[str] = set()
    for match in _CELERY_TASK_LINE.finditer(killed_life_log):
        if match["event"] == "received":
            received.add(match["id"])
        else:
            received.discard(match["id"])
    finished_later = {match["id"] for match in _CELERY_TASK_LINE.finditer(after_kill_logs)
                      if match["event"] != "received"}
    return {task_id: task_id in finished_later for task_id in sorted(received)}


@dataclass
class Node:
    """One node of the cluster: its start command and environment, and the process group running it."""

    name: str
    command: list[str]
    environment: dict[str, str]
    log_path: Path
    port: int | None = None
    process: ManagedProcess | None = None
    log_bytes_at_kill: int | None = None  # where the log of the node's killed life ends

    def start(self) -> None:
        self.process = ManagedProcess(self.name, self.command, log_path=self.log_path, env=self.environment,
                                      cwd=REPO_ROOT)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """SIGKILL to the node's whole process group (the start script's session): nothing is let finish."""
        if self.process is None:
            return
        self.log_bytes_at_kill = self.log_path.stat().st_size if self.log_path.exists() else 0
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            # A killed group may have left children the master did not reap; they are in our group.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Cluster:
    """Owns every process and the database of one multi-node run, and removes them in `stop()`."""

    def __init__(self, work_dir: Path, *, web_processes: int, web_threads: int, worker_concurrency: int,
                 study_stable_seconds: int, visibility_timeout_seconds: int, log=print) -> None:  # type: ignore[no-untyped-def]
        self.work_dir = work_dir
        self.web_processes = web_processes
        self.web_threads = web_threads
        self.worker_concurrency = worker_concurrency
        self.study_stable_seconds = study_stable_seconds
        self.visibility_timeout_seconds = visibility_timeout_seconds
        self.log = log
        self.database_name = f"{DATABASE_PREFIX}{os.getpid()}"
        self.database_created = False
        self.redis_port = free_port()
        self.s3_port = free_port()
        self.haproxy_port = free_port()
        self.secret_key = secrets.token_urlsafe(50)
        self.services: list[ManagedProcess] = []
        self.web_nodes: list[Node] = []
        self.worker_nodes: list[Node] = []
        self.beat: Node | None = None
        self.relay: Node | None = None
        self.haproxy: ManagedProcess | None = None
        self.token = ""

    # --- environment ---------------------------------------------------------------------------------
    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.haproxy_port}"

    def environment(self) -> dict[str, str]:
        """What every node gets: the settings a deployment passes, pointed at the run's private services."""
        inherited = {key: value for key, value in os.environ.items()
                     if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "S3_", "STORAGE_"))}
        return {
            **inherited,
            "PATH": f"{VIRTUALENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": self.secret_key,
            "DEBUG": "false",
            # haproxy here speaks plain HTTP on loopback (a deployment terminates TLS in front of it).
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{self.database_name}",
            "CELERY_BROKER_URL": self.broker_url,
            # Short, so a task held by a killed worker is delivered again within the run.
            "CELERY_VISIBILITY_TIMEOUT": str(self.visibility_timeout_seconds),
            "STUDY_STABLE_SECONDS": str(self.study_stable_seconds),
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "S3_ACCESS_KEY_ID": "bench",
            "S3_SECRET_ACCESS_KEY": "bench",
            "S3_BUCKET": S3_BUCKET,
            "IMAGING_CLOUD_DATA_DIR": str(self.work_dir / "data"),
            "BEAT_SCHEDULE_FILE": str(self.work_dir / "beat-schedule"),
            "ALLOWED_HOSTS": f"{TENANT_DOMAIN},localhost,.localhost,127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }

    def manage(self, *arguments: str, timeout: float = 900) -> str:
        return run_manage(self.environment(), *arguments, timeout=timeout)

    # --- start -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._start_redis()
        self._start_s3()
        self._create_database()
        self.log(f"cluster: migrate_schemas --shared on {self.database_name} ...")
        self.manage("migrate_schemas", "--shared")
        self.log(f"cluster: provision_tenant {TENANT_SLUG} (clinic, public cloud) and issue_token ...")
        self.manage("provision_tenant", "--kind", "clinic", "--slug", TENANT_SLUG, "--name", "Bench clinic",
                    "--domain", TENANT_DOMAIN)
        self.token = self.manage("issue_token", "--tenant", TENANT_SLUG, "--user", "bench",
                                 "--role", "technologist").strip().splitlines()[-1]
        queues = self.manage("worker_queues").strip()
        self.log(f"cluster: worker queues {queues}")
        for index in range(2):
            self.web_nodes.append(self._web_node(index + 1))
            self.worker_nodes.append(self._worker_node(index + 1, queues))
        self.beat = Node("beat", ["bash", "infra/start/beat.sh"], self.environment(), self.work_dir / "beat.log")
        # The task outbox's relay publishes what a node's post-commit send could not (docs/architecture.md).
        self.relay = Node("relay", ["bash", "infra/start/relay.sh"],
                          {**self.environment(), "RELAY_HEARTBEAT_FILE": str(self.work_dir / "relay-heartbeat")},
                          self.work_dir / "relay.log")
        for node in [*self.web_nodes, *self.worker_nodes, self.beat, self.relay]:
            node.start()
        for node in self.web_nodes:
            self.wait_web_ready(node)
        for node in self.worker_nodes:
            self.wait_worker_ready(node)
        self._start_haproxy()

    def _start_redis(self) -> None:
        (self.work_dir / "redis").mkdir(exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on the PATH (Debian package redis-server)")
        self.services.append(ManagedProcess("redis", [
            binary, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "", "--appendonly", "no",
            "--dir", str(self.work_dir / "redis"), "--daemonize", "no", "--protected-mode", "yes",
        ], log_path=self.work_dir / "redis.log"))

        def accepts_connections() -> bool:
            socket.create_connection(("127.0.0.1", self.redis_port), timeout=1).close()
            return True

        wait_until(accepts_connections, timeout=20, what="redis")

    def _start_s3(self) -> None:
        self.services.append(ManagedProcess("s3", [
            str(VIRTUALENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port),
        ], log_path=self.work_dir / "s3.log"))
        wait_until(lambda: requests.get(f"http://127.0.0.1:{self.s3_port}/", timeout=2).status_code < 500,
                   timeout=30, what="moto S3 server")

    def _create_database(self) -> None:
        with _admin_connection() as connection:
            name = sql.Identifier(self.database_name)
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
        self.database_created = True

    def _web_node(self, number: int) -> Node:
        port = free_port()
        environment = {**self.environment(), "HOST": "127.0.0.1", "PORT": str(port),
                       "WEB_CONCURRENCY": str(self.web_processes), "WEB_THREADS": str(self.web_threads)}
        return Node(f"web{number}", ["bash", "infra/start/web.sh"], environment,
                    self.work_dir / f"web{number}.log", port=port)

    def _worker_node(self, number: int, queues: str) -> Node:
        environment = {**self.environment(), "QUEUES": queues, "WORKER_NAME": f"worker{number}",
                       "WORKER_CONCURRENCY": str(self.worker_concurrency), "LOG_LEVEL": "INFO"}
        return Node(f"worker{number}", ["bash", "infra/start/worker.sh"], environment,
                    self.work_dir / f"worker{number}.log")

    def wait_web_ready(self, node: Node) -> None:
        def ready() -> bool:
            if not node.alive():
                raise RuntimeError(f"{node.name} exited:\n" + (node.process.log_tail() if node.process else ""))
            answer = requests.get(f"http://127.0.0.1:{node.port}/readyz", headers={"Host": "localhost"}, timeout=5)
            return answer.status_code == 200

        wait_until(ready, timeout=120, what=f"{node.name} /readyz")

    def wait_worker_ready(self, node: Node) -> None:
        def ready() -> bool:
            if not node.alive():
                raise RuntimeError(f"{node.name} exited:\n" + (node.process.log_tail() if node.process else ""))
            return "ready." in node.log_path.read_text(errors="replace")

        wait_until(ready, timeout=120, interval=0.5, what=f"{node.name} ready")

    def _start_haproxy(self) -> None:
        configuration = self.work_dir / "haproxy.cfg"
        configuration.write_text(haproxy_configuration(
            port=self.haproxy_port, web_ports=[node.port for node in self.web_nodes if node.port],
            admin_socket=self.work_dir / "haproxy.sock"))
        subprocess.run([HAPROXY_BINARY, "-c", "-q", "-f", str(configuration)], check=True)
        self.haproxy = ManagedProcess("haproxy", [HAPROXY_BINARY, "-db", "-f", str(configuration)],
                                      log_path=self.work_dir / "haproxy.log")

        def both_nodes_up() -> bool:
            answer = requests.get(f"{self.base_url}/readyz", headers={"Host": "localhost"}, timeout=5)
            return answer.status_code == 200

        wait_until(both_nodes_up, timeout=30, what="haproxy")

    def haproxy_server_states(self) -> dict[str, str]:
        """Each web node's state as haproxy sees it now (`show stat` on its admin socket: UP, DOWN, …)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(str(self.work_dir / "haproxy.sock"))
            connection.sendall(b"show stat\n")
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        lines = answer.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row["status"] for row in rows
                if row.get("pxname") == "web_nodes" and row["svname"] not in ("BACKEND", "FRONTEND")}

    def haproxy_log_text(self) -> str:
        path = self.work_dir / "haproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- stop --------------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for node in [*self.web_nodes, *self.worker_nodes, *(node for node in (self.beat, self.relay) if node)]:
            node.stop()
        for service in reversed(self.services):
            service.stop()
        self.haproxy = None
        self.services = []

    def drop_database(self) -> None:
        if self.database_created:
            with _admin_connection() as connection:
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database_name)))
            self.database_created = False

