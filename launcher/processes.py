"""The launcher's child processes: each in its own session, its output relayed under its name, stopped
in order; and the sweep that finds what a killed launcher left behind (a marker in each child's
environment)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from config import embedded

MARKER_VARIABLE = "IMAGING_CLOUD_LAUNCHED_FROM"  # value: the data folder; set in every child's environment

print_lock = threading.RLock()  # re-entrant: a signal handler may print while the main thread prints


def say(message: str) -> None:
    with print_lock:
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
                with print_lock:
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
