"""Helpers for DIMSE tests: a free port, a registered peer, and the dcmtk tools run as real peers."""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

from apps.audit.services import Actor
from apps.dimse.services import dimse_peer_add


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def registered_peer(platform: Any, tenant_key: str, *, host: str = "127.0.0.1") -> str:
    """A freshly registered calling AE title for the tenant (the test database keeps rows between runs)."""
    ae_title = f"CT{uuid.uuid4().hex[:10].upper()}"
    with platform.schema():
        dimse_peer_add(tenant=platform.tenants[tenant_key], ae_title=ae_title, host=host, actor=Actor.system("test"))
    return ae_title


def called_ae_title(platform: Any, tenant_key: str) -> str:
    return str(platform.tenants[tenant_key].dimse_ae_title)


def storescu(port: int, *, calling: str, called: str, files: list[Path], options: tuple[str, ...] = ()
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["storescu", "-aet", calling, "-aec", called, *options, "127.0.0.1", str(port),
                           *map(str, files)], capture_output=True, text=True, timeout=120)


def echoscu(port: int, *, calling: str, called: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=60)
