"""Multi-node run: two web and two worker nodes behind haproxy, one of each killed mid-load (docs/benchmarks.md).

    python -m bench.multinode                  # 60 s of load, kill at 1/3, restart at 2/3
    python -m bench.multinode --seconds 30 --no-restart

One run, all on this machine and all private to the run: a fresh PostgreSQL database on
127.0.0.1:5432, a private redis-server, moto's S3 server, two web nodes (`infra/start/web.sh`) and
two worker nodes (`infra/start/worker.sh`, queues from `manage.py worker_queues`), one beat, one outbox relay, and
haproxy in front of the web nodes (Debian package `haproxy`, installed with apt-get if missing;
needs root for that). A few client threads send a bounded STOW-RS + QIDO-RS + WADO-RS load through
haproxy; at --kill-at one web node's and one worker node's whole process group get SIGKILL; at
--restart-at they are started again. Afterwards every instance a STOW answer listed as stored must
come back byte-identical and be listed by QIDO, every study must reach its final state (stable,
thumbnails, warm rendered frames) and the broker must hold no task, within bounds. It prints the
table of requests and errors per phase and exits 1 if anything accepted was lost or any workflow is
stuck. Everything it started is stopped, and its database dropped, on success, failure and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform as host_platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.cluster import (
    REPO_ROOT,
    TENANT_DOMAIN,
    TENANT_SLUG,
    Cluster,
    ensure_haproxy_installed,
    haproxy_log_summary,
    tasks_interrupted,
)
from bench.measure import latency_summary
from bench.multinode_load import (
    InstanceMaker,
    LoadClient,
    LoadState,
    RequestRecord,
    Verification,
    verify_accepted,
)
from bench.platform_peer import drop_stale_databases
from bench.processes import pid_alive

RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("stow", "qido", "wado")
WARM_UP_ROUNDS = 2


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.multinode", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the load (default 60)")
    parser.add_argument("--clients", type=int, default=3, help="client threads (default 3)")
    parser.add_argument("--batch-size", type=int, default=4, help="instances per STOW-RS request, one new series each")
    parser.add_argument("--series-per-study", type=int, default=3, help="batches sent into one study before a new one")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds each client waits between rounds")
    parser.add_argument("--kill-at", type=float, default=1 / 3, help="fraction of the run at which nodes are killed")
    parser.add_argument("--restart-at", type=float, default=2 / 3, help="fraction of the run at which they restart")
    parser.add_argument("--no-restart", action="store_true", help="leave the killed nodes down until the end")
    parser.add_argument("--kill-window", type=float, default=10.0,
                        help="seconds after the kill counted as the kill window (default 10)")
    parser.add_argument("--web-processes", type=int, default=2, help="gunicorn processes per web node")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn process")
    parser.add_argument("--worker-concurrency", type=int, default=1, help="Celery processes per worker node")
    parser.add_argument("--study-stable-seconds", type=int, default=5, help="STUDY_STABLE_SECONDS for the run")
    parser.add_argument("--visibility-timeout", type=int, default=30, help="CELERY_VISIBILITY_TIMEOUT for the run")
    parser.add_argument("--workflow-timeout", type=float, default=240.0,
                        help="seconds after the load within which every workflow must be final")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    arguments = parser.parse_args(argv)
    if not 0 < arguments.kill_at < 1 or (not arguments.no_restart and not arguments.kill_at < arguments.restart_at < 1):
        parser.error("need 0 < --kill-at < --restart-at < 1")
    return arguments


def _raise_interrupt(signal_number: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal_number}")


@dataclass
class Timeline:
    """When the faults happened, in seconds since the load began."""

    end: float
    kill: float | None = None
    restart: float | None = None
    restarted_ready: float | None = None  # when the restarted web node passed /readyz and the worker was ready
    killed: list[str] = field(default_factory=list)
    kill_window: float = 10.0

    def phases(self) -> list[tuple[str, float, float]]:
        if self.kill is None:
            return [("whole run", 0.0, self.end)]
        window_end = min(self.kill + self.kill_window, self.restart or self.end, self.end)
        phases = [("before kill", 0.0, self.kill), ("kill window", self.kill, window_end)]
        degraded_end = self.restart if self.restart is not None else self.end
        if degraded_end > window_end:
            phases.append(("degraded", window_end, degraded_end))
        if self.restart is not None:
            phases.append(("after restart", self.restart, self.end))
        return phases


@dataclass
class WorkflowOutcome:
    studies: int = 0
    indexed_instances: int = 0
    seconds_to_final: float | None = None
    pending: dict[str, list[str]] = field(default_factory=dict)
    broker_messages_left: int = 0
    broker_unacked_left: int = 0
    seconds_to_empty_broker: float | None = None
    tasks_interrupted: dict[str, bool] = field(default_factory=dict)  # task id → finished on a later delivery

    @property
    def stuck(self) -> int:
        never_finished = sum(not finished for finished in self.tasks_interrupted.values())
        return len(self.pending) + self.broker_messages_left + self.broker_unacked_left + never_finished


class MultiNodeRun:
    def __init__(self, arguments: argparse.Namespace) -> None:
        self.arguments = arguments
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.work_dir = Path(tempfile.mkdtemp(prefix="icbench-multinode-"))
        self.cluster = Cluster(
            self.work_dir, web_processes=arguments.web_processes, web_threads=arguments.web_threads,
            worker_concurrency=arguments.worker_concurrency, study_stable_seconds=arguments.study_stable_seconds,
            visibility_timeout_seconds=arguments.visibility_timeout, log=log,
        )
        self.state = LoadState()
        self.timeline = Timeline(end=arguments.seconds, kill_window=arguments.kill_window)
        self.restarting: threading.Thread | None = None

    # --- the run -----------------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        arguments = self.arguments
        for name in drop_stale_databases(pid_alive):
            log(f"dropped stale database {name}")
        haproxy_version = ensure_haproxy_installed(log=log)
        log(f"work folder {self.work_dir}; {haproxy_version}")
        self.cluster.start()
        log(f"cluster up: haproxy {self.cluster.base_url} → web nodes on ports "
            f"{', '.join(str(node.port) for node in self.cluster.web_nodes)}; 2 workers, 1 beat, 1 relay")
        maker = InstanceMaker(batch_size=arguments.batch_size, seed=arguments.seed)
        headers = {"Host": TENANT_DOMAIN, "Authorization": f"Bearer {self.cluster.token}"}
        clients = [LoadClient(number, base_url=self.cluster.base_url, headers=headers, maker=maker, state=self.state,
                              series_per_study=arguments.series_per_study, pause_seconds=arguments.pause)
                   for number in range(1, arguments.clients + 1)]
        threads = [threading.Thread(target=client.run, name=f"client-{client.number}", daemon=True)
                   for client in clients]
        log(f"warm-up: {WARM_UP_ROUNDS} rounds per client, not counted (each process imports and connects lazily)")
        warm_ups = [threading.Thread(target=lambda client=client: [client.round() for _ in range(WARM_UP_ROUNDS)])
                    for client in clients]
        for thread in warm_ups:
            thread.start()
        for thread in warm_ups:
            thread.join()
        log(f"load: {arguments.clients} clients for {arguments.seconds:.0f} s, batches of {arguments.batch_size}")
        self.state.begin()
        for thread in threads:
            thread.start()
        try:
            self._faults()
        finally:
            self.state.stop.set()
            for thread in threads:
                thread.join(timeout=180)
        self.timeline.end = self.state.now()
        log(f"load done: {len(self.state.records)} requests, {len(self.state.accepted)} instances accepted")
        if self.restarting is not None:
            self.restarting.join()
        if any(not node.alive() for node in [*self.cluster.web_nodes, *self.cluster.worker_nodes]):
            log("starting the killed nodes again for the final check (--no-restart)")
            self._restart_killed()
        log("checking every accepted instance through haproxy (WADO-RS bytes, QIDO-RS listing) ...")
        verification = verify_accepted(base_url=self.cluster.base_url, headers=headers, state=self.state)
        log(f"retrievable {verification.retrievable}/{verification.accepted}, listed {verification.listed}")
        log("waiting for every study's follow-up work and for the broker to drain ...")
        workflows = self._wait_for_workflows()
        return self._results(verification, workflows, haproxy_version)

    def _sleep_until(self, moment: float) -> None:
        while not self.state.stop.is_set() and self.state.now() < moment:
            time.sleep(min(0.2, max(0.0, moment - self.state.now())))

    def _faults(self) -> None:
        arguments = self.arguments
        self._sleep_until(arguments.seconds * arguments.kill_at)
        victims = [self.cluster.web_nodes[0], self.cluster.worker_nodes[0]]
        self.timeline.kill = self.state.now()
        for node in victims:
            node.kill()
        self.timeline.killed = [node.name for node in victims]
        log(f"t={self.timeline.kill:.1f}s: SIGKILL to the process groups of {', '.join(self.timeline.killed)}")
        if not arguments.no_restart:
            self._sleep_until(arguments.seconds * arguments.restart_at)
            self.timeline.restart = self.state.now()
            log(f"t={self.timeline.restart:.1f}s: starting {', '.join(self.timeline.killed)} again")
            # Started from this (the main) thread: a child's PR_SET_PDEATHSIG fires when the thread
            # that started it ends, so nodes started from a helper thread would be stopped with it.
            self._start_killed()
            # The load goes on while they boot: a rescheduled pod takes its time to pass /readyz.
            self.restarting = threading.Thread(target=self._wait_restarted_ready, name="restart", daemon=True)
            self.restarting.start()
        self._sleep_until(arguments.seconds)

    def _restart_killed(self) -> None:
        self._start_killed()
        self._wait_restarted_ready()

    def _start_killed(self) -> None:
        for node in [*self.cluster.web_nodes, *self.cluster.worker_nodes]:
            if not node.alive():
                node.start()

    def _wait_restarted_ready(self) -> None:
        for node in self.cluster.web_nodes:
            self.cluster.wait_web_ready(node)
        for node in self.cluster.worker_nodes:
            self.cluster.wait_worker_ready(node)
        self.timeline.restarted_ready = self.state.now()
        log(f"t={self.timeline.restarted_ready:.1f}s: restarted nodes ready")

    def _study_states(self) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "bench.multinode_workflows", "--tenant", TENANT_SLUG], cwd=REPO_ROOT,
            env=self.cluster.environment(), capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"bench.multinode_workflows failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def _wait_for_workflows(self) -> WorkflowOutcome:
        outcome = WorkflowOutcome()
        started = time.monotonic()
        deadline = started + self.arguments.workflow_timeout
        while True:
            states = self._study_states()
            outcome.studies, outcome.indexed_instances = states["studies"], states["instances"]
            outcome.pending = states["pending"]
            if not outcome.pending:
                outcome.seconds_to_final = time.monotonic() - started
                break
            if time.monotonic() > deadline:
                break
            time.sleep(5)
        log(f"studies final: {outcome.studies - len(outcome.pending)}/{outcome.studies}"
            + (f" after {outcome.seconds_to_final:.0f} s" if outcome.seconds_to_final is not None else ""))
        broker = redis.Redis(port=self.cluster.redis_port)
        broker_started = time.monotonic()
        # Beat queues a quick sweep every 10 s, so the broker is seen empty between two of them;
        # a message held by a dead worker stays in `unacked` until the visibility timeout restores it.
        broker_deadline = broker_started + self.arguments.visibility_timeout + 60
        while True:
            queued = sum(int(broker.llen(key)) for key in broker.scan_iter() if broker.type(key) == b"list")
            unacked = int(broker.hlen("unacked"))
            outcome.broker_messages_left, outcome.broker_unacked_left = queued, unacked
            if queued == 0 and unacked == 0:
                outcome.seconds_to_empty_broker = time.monotonic() - broker_started
                break
            if time.monotonic() > broker_deadline:
                break
            time.sleep(0.5)
        log(f"broker: {outcome.broker_messages_left} queued, {outcome.broker_unacked_left} unacknowledged")
        outcome.tasks_interrupted = self._tasks_interrupted()
        return outcome

    def _tasks_interrupted(self) -> dict[str, bool]:
        """Tasks in flight on the killed worker node, and whether each was finished later elsewhere.

        The same file holds the killed life and the restarted one (appended); the offset taken at the
        kill separates them. The worker logs at INFO, which names every task it receives and finishes.
        """
        logs = {node.name: node.log_path.read_bytes() for node in self.cluster.worker_nodes}
        after_kill = "".join(
            logs[node.name][node.log_bytes_at_kill or 0:].decode(errors="replace") for node in self.cluster.worker_nodes)
        interrupted: dict[str, bool] = {}
        for node in self.cluster.worker_nodes:
            if node.log_bytes_at_kill is not None:
                killed_life = logs[node.name][:node.log_bytes_at_kill].decode(errors="replace")
                interrupted |= tasks_interrupted(killed_life_log=killed_life, after_kill_logs=after_kill)
        return interrupted

    # --- results -----------------------------------------------------------------------------------------
    def _results(self, verification: Verification, workflows: WorkflowOutcome, haproxy_version: str) -> dict[str, Any]:
        records = self.state.records
        phases = []
        for name, start, end in self.timeline.phases():
            # By when the answer (or the failure) came: a request cut by the kill belongs to the kill.
            inside = [record for record in records if start <= record.started + record.seconds < end]
            phases.append({"phase": name, "from_s": round(start, 1), "to_s": round(end, 1),
                           "by_kind": {kind: _phase_counts([r for r in inside if r.kind == kind]) for kind in KINDS},
                           "all": _phase_counts(inside)})
        latencies = {kind: latency_summary([r.seconds for r in records if r.kind == kind and r.ok]) for kind in KINDS}
        memory = psutil.virtual_memory().total / 1024**3
        return {
            "stamp": self.stamp,
            "command": "python -m bench.multinode " + " ".join(sys.argv[1:]),
            "machine": {"nproc": os.cpu_count(), "memory_gib": round(memory, 1), "python": host_platform.python_version(),
                        "load_average_at_end": os.getloadavg(), "haproxy": haproxy_version},
            "arguments": {key: (str(value) if isinstance(value, Path) else value)
                          for key, value in vars(self.arguments).items()},
            "timeline": asdict(self.timeline),
            "phases": phases,
            "latency": latencies,
            "errors": [asdict(record) for record in records if not record.ok],
            "requests": [asdict(record) for record in records],
            "haproxy": {**haproxy_log_summary(self.cluster.haproxy_log_text()),
                        "servers_at_end": self._haproxy_server_states()},
            "nodes_alive_at_end": {node.name: node.alive() for node in
                                   [*self.cluster.web_nodes, *self.cluster.worker_nodes]},
            "instances": {"sent": len(self.state.accepted) + self.state.sent_not_accepted,
                          "accepted": verification.accepted, "retrievable": verification.retrievable,
                          "listed_by_qido": verification.listed, "lost": verification.lost,
                          "not_listed": verification.not_listed, "indexed": workflows.indexed_instances},
            "workflows": {"studies": workflows.studies, "seconds_to_final": workflows.seconds_to_final,
                          "pending": workflows.pending, "broker_messages_left": workflows.broker_messages_left,
                          "broker_unacked_left": workflows.broker_unacked_left,
                          "seconds_to_empty_broker": workflows.seconds_to_empty_broker,
                          "tasks_interrupted_by_kill": workflows.tasks_interrupted, "stuck": workflows.stuck},
        }

    def _haproxy_server_states(self) -> dict[str, str]:
        try:
            return self.cluster.haproxy_server_states()
        except (OSError, IndexError, KeyError) as failure:
            return {"haproxy admin socket": f"unreadable ({failure})"}

    def keep_logs(self, results_dir: Path) -> Path:
        target = results_dir / f"multinode-{self.stamp}-logs"
        target.mkdir(parents=True, exist_ok=True)
        for path in self.work_dir.glob("*.log"):
            shutil.copy(path, target / path.name)
        configuration = self.work_dir / "haproxy.cfg"
        if configuration.exists():
            shutil.copy(configuration, target / configuration.name)
        return target

    def clean_up(self) -> None:
        self.cluster.stop()
        self.cluster.drop_database()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _phase_counts(records: list[RequestRecord]) -> dict[str, Any]:
    errors = [record for record in records if not record.ok]
    statuses = Counter(str(record.status) if record.status else record.error.split(":")[0] or "no answer"
                       for record in errors)
    return {"requests": len(records), "errors": len(errors),
            "error_rate": round(len(errors) / len(records), 4) if records else 0.0,
            "error_statuses": dict(sorted(statuses.items()))}


def report(results: dict[str, Any]) -> str:
    lines = [f"Multi-node run {results['stamp']}: {results['command']}",
             f"machine: {results['machine']['nproc']} cores, {results['machine']['memory_gib']} GiB; "
             f"{results['machine']['haproxy']}"]
    timeline = results["timeline"]
    if timeline["kill"] is not None:
        restart = (f", restarted at {timeline['restart']:.1f} s (ready at {timeline['restarted_ready']:.1f} s)"
                   if timeline["restart"] is not None and timeline["restarted_ready"] is not None else ", not restarted")
        lines.append(f"killed {', '.join(timeline['killed'])} at {timeline['kill']:.1f} s{restart}; "
                     f"load ended at {timeline['end']:.1f} s")
    lines += ["", "| phase (answer received) | seconds | STOW-RS (errors) | QIDO-RS (errors) | WADO-RS (errors) | error rate | error answers |",
              "|---|---|---|---|---|---|---|"]
    for phase in results["phases"]:  # requests counted in the phase where their answer came
        cells = [f"{phase['by_kind'][kind]['requests']} ({phase['by_kind'][kind]['errors']})" for kind in KINDS]
        statuses = ", ".join(f"{status} ×{count}" for status, count in phase["all"]["error_statuses"].items()) or "–"
        lines.append(f"| {phase['phase']} | {phase['from_s']:.1f}–{phase['to_s']:.1f} | {' | '.join(cells)} | "
                     f"{phase['all']['error_rate'] * 100:.1f} % | {statuses} |")
    lines += ["", "| request | answered OK | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
    for kind in KINDS:
        summary = results["latency"][kind]
        if summary.get("samples"):
            lines.append(f"| {kind} | {summary['samples']} | {summary['p50_ms']:.0f} | {summary['p95_ms']:.0f} | "
                         f"{summary['max_ms']:.0f} |")
    instances, workflows, balancer = results["instances"], results["workflows"], results["haproxy"]
    lines += ["", "haproxy: " + "; ".join(balancer["state_changes"]),
              "haproxy servers at the end: " + ", ".join(f"{name} {state}" for name, state
                                                           in balancer["servers_at_end"].items())
              + "; nodes alive: " + ", ".join(f"{name} {'yes' if alive else 'NO'}" for name, alive
                                              in results["nodes_alive_at_end"].items()),
              f"haproxy: {balancer['redispatched']} requests sent to the other node after a refused connection; "
              "answers not 2xx: " + (", ".join(f"{key} ×{count}" for key, count in balancer["failed_answers"].items())
                                     or "none")]
    for error in results["errors"][:10]:
        lines.append(f"  error at {error['started']:.1f} s: {error['kind']} {error['status'] or ''} {error['error']}")
    lines += [
        "",
        f"instances: sent {instances['sent']}, accepted {instances['accepted']}, retrievable byte-identical "
        f"{instances['retrievable']}, listed by QIDO {instances['listed_by_qido']}, LOST {len(instances['lost'])}, "
        f"not listed {len(instances['not_listed'])}; in the index {instances['indexed']} "
        f"(stored but never acknowledged to a client: {instances['indexed'] - instances['accepted']})",
        f"workflows: {workflows['studies']} studies, final after "
        + (f"{workflows['seconds_to_final']:.0f} s" if workflows["seconds_to_final"] is not None else "— (NOT final)")
        + "; broker empty after "
        + (f"{workflows['seconds_to_empty_broker']:.1f} s" if workflows["seconds_to_empty_broker"] is not None
           else f"— ({workflows['broker_messages_left']} queued, {workflows['broker_unacked_left']} unacked)")
        + f"; STUCK {workflows['stuck']}",
        f"tasks in flight on the killed worker: {len(workflows['tasks_interrupted_by_kill'])}, finished later on "
        f"a new delivery: {sum(workflows['tasks_interrupted_by_kill'].values())}",
    ]
    for line in instances["lost"][:10]:
        lines.append(f"  lost: {line}")
    for uid, missing in list(workflows["pending"].items())[:10]:
        lines.append(f"  study {uid} still waiting for: {', '.join(missing)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    run = MultiNodeRun(arguments)
    results: dict[str, Any] | None = None
    try:
        results = run.execute()
    finally:
        # A second Ctrl-C must not cut the cleanup short: every process and the database go.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            logs = run.keep_logs(arguments.results_dir)
            log(f"server logs kept in {logs}")
        run.clean_up()
        signal.signal(signal.SIGINT, previous)
    print(report(results))
    arguments.results_dir.mkdir(parents=True, exist_ok=True)
    (arguments.results_dir / f"multinode-{run.stamp}.json").write_text(json.dumps(results, indent=2))
    failed = bool(results["instances"]["lost"] or results["instances"]["not_listed"] or results["workflows"]["stuck"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
