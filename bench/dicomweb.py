"""DICOMweb benchmark: the platform against Orthanc + DICOMweb plugin, same client, same run
(docs/benchmarks.md "Targets").

    sudo .venv/bin/python -m bench.dicomweb                 # full: ~3,000 instances, ~1.6 GB
    sudo .venv/bin/python -m bench.dicomweb --scale 0.05    # smoke run
    sudo .venv/bin/python -m bench.dicomweb --qido-scale    # platform QIDO at 10,000 studies / 1,000,000 instances
    sudo .venv/bin/python -m bench.dicomweb --phases stow   # only STOW-RS (it always runs: it loads the data)

One run: generate (or reuse) the data set; create a private network namespace with only loopback
and enter it; start Orthanc and the platform (gunicorn) inside it; measure STOW-RS, QIDO-RS,
WADO-RS, rendered frames and metadata against each peer in turn with the same client code; print a
table (figure | platform | Orthanc | ratio | target) and write it as JSON to bench/results/.
Everything started is stopped, and the namespace, database and temporary folders removed, on
success, failure and Ctrl-C. Needs root (network namespaces). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform as host_platform
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import dataset as bench_dataset
from bench import netns, phases, report
from bench.client import Peer
from bench.measure import CpuAccount
from bench.orthanc_peer import OrthancPeer
from bench.orthanc_peer import ensure_installed as ensure_orthanc_installed
from bench.platform_peer import PlatformPeer, drop_stale_databases
from bench.processes import pid_alive

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PHASES = ("stow", "qido", "wado", "rendered", "metadata")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dicomweb", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="data set size; 1.0 ≈ 3,000 instances, 1.6 GB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=bench_dataset.DEFAULT_CACHE)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--peers", default="platform,orthanc", help="comma-separated subset of platform,orthanc")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for the batched STOW")
    parser.add_argument("--qido-repeats", type=int, default=100, help="timed queries per QIDO query type")
    parser.add_argument("--metadata-repeats", type=int, default=3, help="rounds over every study")
    parser.add_argument("--rendered-frames", type=int, default=40, help="distinct CT frames rendered (each twice)")
    parser.add_argument("--wado-series", type=int, default=0, help="series retrieved (0 = every series)")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    parser.add_argument("--settings", default="config.settings.production")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to wait after sync(2) between peers, so one peer's writeback does not land on the other")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)} (STOW always runs: it loads the data)")
    parser.add_argument("--qido-scale", action="store_true",
                        help="fill the platform index to --scale-studies/--scale-instances and measure QIDO there")
    parser.add_argument("--scale-studies", type=int, default=10_000)
    parser.add_argument("--scale-instances", type=int, default=1_000_000)
    arguments = parser.parse_args(argv)
    arguments.peer_names = [name.strip() for name in arguments.peers.split(",") if name.strip()]
    arguments.phase_names = {name.strip() for name in arguments.phases.split(",") if name.strip()} | {"stow"}
    if arguments.phase_names - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(arguments.phase_names - set(PHASES)))}")
    unknown = set(arguments.peer_names) - set(report.PEERS)
    if unknown:
        parser.error(f"unknown peers: {', '.join(sorted(unknown))}")
    return arguments


def machine_snapshot() -> dict[str, Any]:
    return {
        "load_average": os.getloadavg(), "cpu_count": os.cpu_count(),
        "cpu_percent_1s": psutil.cpu_percent(interval=1.0),
        "memory_available_gib": psutil.virtual_memory().available / 1024**3,
    }


def _raise_interrupt(signal_number: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal_number}")


def settle(seconds: float) -> None:
    os.sync()
    time.sleep(seconds)


class Run:
    """One benchmark run: owns the namespace, the peers and the temporary folder, and cleans them up."""

    def __init__(self, arguments: argparse.Namespace) -> None:
        self.arguments = arguments
        self.namespace = f"{netns.NAMESPACE_PREFIX}{os.getpid()}"
        self.cancel = threading.Event()
        self.results: dict[str, Any] = {"phases": {}, "notes": [], "load": {}}
        self.peers: dict[str, Peer] = {}
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.database_name: str | None = None

    # --- setup ------------------------------------------------------------------------------------------
    def start(self, stack: contextlib.ExitStack) -> None:
        arguments = self.arguments
        for name in netns.remove_stale():
            log(f"removed stale namespace {name}")
        for name in drop_stale_databases(pid_alive):
            log(f"dropped stale database {name}")
        for folder in Path(tempfile.gettempdir()).glob("icbench-*-*"):
            owner = folder.name.split("-")[1]
            if owner.isdigit() and not pid_alive(int(owner)):
                shutil.rmtree(folder, ignore_errors=True)
                log(f"removed stale folder {folder}")
        netns.create(self.namespace)
        stack.callback(self._delete_namespace)
        netns.enter(self.namespace)
        visible = netns.interfaces()
        if visible != ["lo"]:
            raise RuntimeError(f"expected only loopback inside {self.namespace}, found {visible}")
        log(f"inside network namespace {self.namespace} (interfaces: {', '.join(visible)})")
        work = Path(tempfile.mkdtemp(prefix=f"icbench-{os.getpid()}-"))
        stack.callback(shutil.rmtree, work, True)
        stack.callback(self._keep_logs, work)
        if "orthanc" in arguments.peer_names:
            orthanc = OrthancPeer(work / "orthanc")
            stack.callback(orthanc.stop)
            self.orthanc = orthanc
            self.peers["orthanc"] = orthanc.start()
            log(f"started {self.peers['orthanc'].label} (pid {orthanc.process.pid if orthanc.process else '?'})")
        if "platform" in arguments.peer_names:
            platform_peer = PlatformPeer(work / "platform", workers=arguments.gunicorn_workers,
                                         threads=arguments.gunicorn_threads, settings=arguments.settings, log=log)
            stack.callback(platform_peer.drop_database)
            stack.callback(platform_peer.stop)
            self.platform = platform_peer
            self.database_name = platform_peer.database_name
            peer = platform_peer.start()
            self.results["platform_label"] = peer.label
            log(f"started {peer.label} (pid {peer.server_pid})")
            available, reason = platform_peer.dicomweb_available(peer)
            if available:
                self.peers["platform"] = peer
            else:
                note = f"platform DICOMweb not measured: {reason}"
                self.results["notes"].append(note)
                log(note)

    def _delete_namespace(self) -> None:
        leftovers = [pid for pid in netns.processes_inside(self.namespace) if pid != os.getpid()]
        for pid in leftovers:  # only processes we started can be in our own namespace
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.name() != "ip":
                    log(f"killing leftover process {pid} ({process.name()}) in {self.namespace}")
                    process.kill()
        netns.delete(self.namespace)

    def _keep_logs(self, work: Path) -> None:
        target = self.arguments.results_dir / f"dicomweb-{self.stamp}-logs"
        for log_file in list(work.glob("*/*.log")):
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(log_file, target / f"{log_file.parent.name}-{log_file.name}")

    # --- phases -------------------------------------------------------------------------------------------
    def each_peer(self, phase: str, measure) -> None:  # type: ignore[no-untyped-def]
        """Run `measure(peer)` for every peer in turn, with writeback settled before each."""
        self.results["load"][phase] = os.getloadavg()
        summaries = self.results["phases"].setdefault(phase, {})
        for name in report.PEERS:
            peer = self.peers.get(name)
            if peer is None:
                continue
            settle(self.arguments.settle)
            with CpuAccount(self.database_name) as cpu:
                summary = measure(peer)
            summary["cpu"] = {**cpu.result, "top_other_processes": [
                f"{name} {seconds:.2f}s" for name, seconds in cpu.top_others]}
            summaries[name] = summary

    def measure(self, data: bench_dataset.BenchDataset) -> None:
        arguments = self.arguments
        if arguments.qido_scale:
            if "platform" not in self.peers:
                raise RuntimeError("--qido-scale needs the platform peer, and its DICOMweb is not available")
            from bench import scale_index

            self.results["qido_scale_loader"] = scale_index.check_loader(self.platform)
        plan = phases.plan_ingest(data, batch_size=arguments.batch_size, log=log)
        log(f"STOW-RS batch {arguments.batch_size}, {arguments.clients} clients: {len(plan.bulk_bodies)} requests")
        self.each_peer("stow_batch50", lambda peer: phases.stow_phase(
            peer, plan.bulk_bodies, clients=arguments.clients, cancel=self.cancel))
        log(f"STOW-RS batch 1, 1 client: {len(plan.single_bodies)} requests")
        self.each_peer("stow_batch1", lambda peer: phases.stow_phase(
            peer, plan.single_bodies, clients=1, cancel=self.cancel))
        plan.bulk_bodies.clear()  # free the request bodies (≈ the data set size) before the reads
        plan.single_bodies.clear()
        self._ingest_memory()
        self._check_ingest(data)
        if arguments.qido_scale:
            self._fill_platform_index()
        wanted = arguments.phase_names
        for query in phases.query_types(data) if "qido" in wanted else []:
            log(f"{query.title}: {arguments.qido_repeats} queries per peer")
            self.each_peer(query.key, lambda peer, query=query: phases.qido_phase(
                peer, query, repeats=arguments.qido_repeats,
                check_counts=not (arguments.qido_scale and peer.name == "platform")))
        if arguments.qido_scale:
            return
        if "wado" in wanted:
            series = [(study, one_series) for study in data.studies for one_series in study.series]
            if arguments.wado_series:
                series = series[:: max(1, len(series) // arguments.wado_series)][: arguments.wado_series]
            log(f"WADO-RS series retrieve: {len(series)} series per peer")
            self.each_peer("wado_series", lambda peer: phases.wado_series_phase(peer, series))
        if "rendered" in wanted:
            frames = phases.rendered_sample(data, arguments.rendered_frames)
            log(f"rendered CT frames: {len(frames)} frames, cold then warm, per peer")
            self.each_peer("rendered", lambda peer: phases.rendered_phase(peer, frames))
        if "metadata" in wanted:
            log(f"study metadata: {len(data.studies)} studies × {arguments.metadata_repeats} per peer")
            self.each_peer("metadata", lambda peer: phases.metadata_phase(
                peer, data.studies, repeats=arguments.metadata_repeats))

    def _ingest_memory(self) -> None:
        memory: dict[str, dict[str, Any]] = {}
        for name in self.peers:
            bulk = self.results["phases"].get("stow_batch50", {}).get(name, {})
            single = self.results["phases"].get("stow_batch1", {}).get(name, {})
            quarters = [peak for peak in bulk.get("peak_rss_by_quarter_mib") or [] if peak]
            memory[name] = {
                "peak_rss_mib": max(bulk.get("peak_rss_mib", 0.0), single.get("peak_rss_mib", 0.0)),
                "rss_before_ingest_mib": bulk.get("rss_before_mib"),
                "peak_rss_by_quarter_mib": bulk.get("peak_rss_by_quarter_mib"),
                "last_over_first_quarter": quarters[-1] / quarters[0] if len(quarters) > 1 else None,
            }
        self.results["phases"]["ingest_memory"] = memory

    def _check_ingest(self, data: bench_dataset.BenchDataset) -> None:
        if "orthanc" in self.peers:
            stored = self.orthanc.instance_count()
            self.results["orthanc_instances_after_ingest"] = stored
            if stored != data.instance_count:
                self.results["notes"].append(f"Orthanc holds {stored} instances, the data set has {data.instance_count}")

    def _fill_platform_index(self) -> None:
        from bench import scale_index

        log(f"filling the platform index to {self.arguments.scale_studies:,} studies / "
            f"{self.arguments.scale_instances:,} instances ...")
        started = time.perf_counter()
        loaded = scale_index.fill_platform(self.platform, studies=self.arguments.scale_studies,
                                           instances=self.arguments.scale_instances, seed=self.arguments.seed, log=log)
        loaded["seconds"] = time.perf_counter() - started
        self.results["qido_scale_fill"] = loaded
        log(f"index filled in {loaded['seconds']:.0f} s: {loaded}")


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if os.geteuid() != 0:
        print("bench.dicomweb needs root (it creates a network namespace); run it with sudo.", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    started_at = datetime.now(UTC)
    load_before = machine_snapshot()
    versions = ensure_orthanc_installed(log=log) if "orthanc" in arguments.peer_names else {}
    data = bench_dataset.ensure(cache=arguments.cache, scale=arguments.scale, seed=arguments.seed,
                                log=lambda message: log(message))
    log(f"data set: {data.instance_count} instances in {len(data.studies)} studies, {data.total_bytes / 1e9:.2f} GB")
    run = Run(arguments)
    status = 0
    stack = contextlib.ExitStack()
    try:
        run.start(stack)
        if not run.peers:
            raise RuntimeError("no peer to measure")
        run.measure(data)
    except KeyboardInterrupt:
        status = 130
        log("interrupted: stopping everything this run started ...")
    except Exception as error:  # noqa: BLE001 - report what failed once the cleanup has run
        status = 1
        log(f"benchmark failed: {type(error).__name__}: {error}")
        run.results["error"] = f"{type(error).__name__}: {error}"
    finally:
        run.cancel.set()
        # A second Ctrl-C must not cut the cleanup short: ignore it until everything is stopped.
        previous = {number: signal.signal(number, signal.SIG_IGN)
                    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            stack.close()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
        log("stopped Orthanc, gunicorn and redis; dropped the database; removed the namespace and temp folder")
    if status == 130:
        return status
    figures = report.build_figures(run.results["phases"])
    document = {
        "benchmark": "dicomweb", "started_at": started_at.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "mode": "qido-scale" if arguments.qido_scale else "standard",
        "arguments": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(arguments).items()},
        "machine": {"before": load_before, "after": machine_snapshot(), "kernel": host_platform.release(),
                    "python": sys.version.split()[0], "other_cpu": report.cpu_summary(run.results["phases"])},
        "peers": {name: peer.label for name, peer in run.peers.items()}, "orthanc_packages": versions,
        "dataset": data.summary(), "figures": report.figures_json(figures, qido_scale=arguments.qido_scale),
        **run.results,
    }
    arguments.results_dir.mkdir(parents=True, exist_ok=True)
    path = arguments.results_dir / f"dicomweb-{run.stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str))
    path.with_suffix(".md").write_text(report.markdown_table(figures, qido_scale=arguments.qido_scale) + "\n")
    print()
    print(report.table(figures, qido_scale=arguments.qido_scale))
    for note in run.results["notes"]:
        print(f"note: {note}")
    cpu = document["machine"]["other_cpu"]
    if cpu:
        print(f"\nCPU used by other processes while measuring: {cpu['other_cores_mean']:.2f} cores on average, "
              f"{cpu['other_cores_max']:.2f} at most ({cpu['other_cores_max_during']}); this machine has {os.cpu_count()}")
    print(f"load average before {load_before['load_average']}, after {document['machine']['after']['load_average']}")
    print(f"results: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
