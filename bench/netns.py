"""A private network namespace with only loopback, entered by the benchmark process itself.

Orthanc binds every address (it has no option to bind one), so both peers, and the client, run in
a namespace of our own whose only interface is `lo`: nothing the servers open is reachable from the
machine's network, and the client measures both over the same loopback. PostgreSQL is reached
through its unix socket, which is a file and so is not limited by network namespaces.

`enter()` calls setns(2) on the calling thread before any other thread exists; threads and child
processes created afterwards inherit the namespace, so `ip netns exec` is not needed for them.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
from pathlib import Path

from bench.processes import pid_alive

CLONE_NEWNET = 0x40000000
NAMESPACE_PREFIX = "icbench-"
_libc = ctypes.CDLL(None, use_errno=True)


def _run(*command: str) -> None:
    subprocess.run(list(command), check=True, capture_output=True, text=True)


def create(name: str) -> None:
    _run("ip", "netns", "add", name)
    _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")


def enter(name: str) -> None:
    descriptor = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({name}): {os.strerror(error)}")
    finally:
        os.close(descriptor)


def processes_inside(name: str) -> list[int]:
    result = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(pid) for pid in result.stdout.split()]


def delete(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def remove_stale() -> list[str]:
    """Delete namespaces left by an earlier benchmark run that was killed (its pid is in the name)."""
    removed = []
    for path in Path("/run/netns").glob(f"{NAMESPACE_PREFIX}*"):
        match = re.fullmatch(rf"{NAMESPACE_PREFIX}(\d+)", path.name)
        if match and not pid_alive(int(match.group(1))) and not processes_inside(path.name):
            delete(path.name)
            removed.append(path.name)
    return removed


def interfaces() -> list[str]:
    """Names of the interfaces this process sees (proves the client runs inside the namespace)."""
    listing = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(":")[1].strip() for line in listing.splitlines())
