"""Statistics and the server-memory sampler shared by every benchmark phase."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil

from bench.processes import tree_rss_bytes

MEGABYTE = 1_000_000  # throughput in MB/s uses decimal megabytes, like docs/benchmarks.md
MEBIBYTE = 1024 * 1024  # memory in MiB


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (numpy's default method), `fraction` in [0, 1]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/max/mean in milliseconds, and the sample count."""
    if not seconds:
        return {"samples": 0}
    return {
        "samples": len(seconds),
        "p50_ms": percentile(seconds, 0.50) * 1000,
        "p95_ms": percentile(seconds, 0.95) * 1000,
        "max_ms": max(seconds) * 1000,
        "mean_ms": sum(seconds) / len(seconds) * 1000,
    }


@dataclass
class MemorySampler:
    """Samples the RSS of a server's process tree every `interval` seconds on a background thread.

    `progress` (optional) is read at each sample, so memory can be related to how much of the
    ingest has happened (to see whether it stays flat as instances accumulate).
    """

    pid: int
    interval: float = 0.05
    progress: Callable[[], int] | None = None
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (time, progress, rss bytes)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, name=f"rss-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _sample(self) -> None:
        progress = self.progress() if self.progress else 0
        self.samples.append((time.perf_counter(), progress, tree_rss_bytes(self.pid)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    @property
    def peak_bytes(self) -> int:
        return max((rss for _, _, rss in self.samples), default=0)

    def peak_by_quarter(self, total: int) -> list[float | None]:
        """Peak RSS (MiB) while the first, second, third and last quarter of `total` was in progress
        (None for a quarter no sample fell in: progress moves a whole batch at a time)."""
        peaks: list[float | None] = [None] * 4
        for _, progress, rss in self.samples:
            quarter = min(3, int(4 * progress / total)) if total else 0
            peaks[quarter] = max(peaks[quarter] or 0.0, rss / MEBIBYTE)
        return peaks


class Counter:
    """A thread-safe running total (instances stored so far)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def add(self, amount: int) -> None:
        with self._lock:
            self._value += amount

    @property
    def value(self) -> int:
        return self._value


def _process_cpu(database_name: str | None) -> dict[tuple[int, float], tuple[str, float, str]]:
    """CPU seconds of every process (with its reaped children), tagged bench / kernel / other.

    bench: this process's tree (client, Orthanc, gunicorn, redis) and the PostgreSQL backends
    serving the benchmark's database (their command line names it); kernel: kernel threads (writeback,
    softirq daemons: mostly work our own I/O causes); other: everything else on the machine.
    """
    own = {psutil.Process().pid}
    with contextlib.suppress(psutil.NoSuchProcess):
        own |= {child.pid for child in psutil.Process().children(recursive=True)}
    table: dict[tuple[int, float], tuple[str, float, str]] = {}
    for process in psutil.process_iter(["pid", "ppid", "name", "cmdline", "create_time", "cpu_times"]):
        info = process.info
        times = info["cpu_times"]
        if times is None:
            continue
        seconds = times.user + times.system + times.children_user + times.children_system
        if info["pid"] in own or (database_name and info["name"] == "postgres"
                                  and database_name in " ".join(info["cmdline"] or [])):
            kind = "bench"
        elif info["pid"] == 2 or info["ppid"] == 2:
            kind = "kernel"
        else:
            kind = "other"
        table[(info["pid"], info["create_time"])] = (kind, seconds, info["name"] or "?")
    return table


class CpuAccount:
    """How many cores this benchmark, the kernel and everything else used during a measurement.

    The machine is shared; a figure measured while other work took a core is not comparable to one
    measured on an idle machine, so every phase records `other_cores` beside its timings. A process
    that ends during the measurement shows up in its parent's reaped-children time, so its time
    before the measurement is taken back out.
    """

    def __init__(self, database_name: str | None) -> None:
        self.database_name = database_name
        self.result: dict[str, float] = {}

    def __enter__(self) -> CpuAccount:
        self._wall = time.perf_counter()
        self._before = _process_cpu(self.database_name)
        self._interrupts = self._interrupt_seconds()
        return self

    @staticmethod
    def _interrupt_seconds() -> float:
        times = psutil.cpu_times()
        return times.irq + times.softirq

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        after = _process_cpu(self.database_name)
        used = {"bench": 0.0, "kernel": self._interrupt_seconds() - self._interrupts, "other": 0.0}
        others: dict[str, float] = {}
        for key, (kind, seconds, name) in after.items():
            delta = seconds - self._before.get(key, (kind, 0.0, name))[1]
            used[kind] += delta
            if kind == "other" and delta > 0:
                others[name] = others.get(name, 0.0) + delta
        for key, (kind, seconds, _name) in self._before.items():
            if key not in after:
                used[kind] -= seconds
        self.result = {"seconds": wall, **{f"{kind}_cores": max(0.0, value) / wall if wall else 0.0
                                           for kind, value in used.items()}}
        self.top_others = sorted(others.items(), key=lambda item: -item[1])[:3]
