"""Orthanc with its DICOMweb plugin, as the benchmark's reference peer (docs/benchmarks.md
"What runs where").

Debian 12 packages `orthanc` (1.10.x) and `orthanc-dicomweb` (1.7), started with a configuration of
our own: a temporary storage folder, the default SQLite index, the DICOMweb plugin at /dicom-web,
authentication off, HTTP on 8042. Orthanc cannot bind a single address, so it must be started
inside the benchmark's private network namespace (bench.netns), where 8042 and 4242 exist only on
that namespace's loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import requests

from bench.client import Peer
from bench.processes import ManagedProcess, wait_until

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
HTTP_PORT = 8042


def installed_versions() -> dict[str, str]:
    versions = {}
    for package in ("orthanc", "orthanc-dicomweb"):
        result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        versions[package] = result.stdout.strip() if result.returncode == 0 else ""
    return versions


def ensure_installed(log=print) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Install the Debian packages if they are missing (apt; needs root and the package mirror)."""
    versions = installed_versions()
    if all(versions.values()) and Path(DICOMWEB_PLUGIN).exists():
        return versions
    log("installing orthanc and orthanc-dicomweb with apt-get ...")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "orthanc", "orthanc-dicomweb"], check=True,
                   env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return installed_versions()


class OrthancPeer:
    def __init__(self, work_dir: Path, *, http_threads: int = 50) -> None:
        self.work_dir = work_dir
        self.http_threads = http_threads
        self.process: ManagedProcess | None = None

    def configuration(self) -> dict[str, object]:
        return {
            "Name": "icbench-orthanc",
            "StorageDirectory": str(self.work_dir / "storage"),
            "IndexDirectory": str(self.work_dir / "index"),
            "StorageCompression": False,
            "Plugins": [DICOMWEB_PLUGIN],
            "HttpServerEnabled": True,
            "HttpPort": HTTP_PORT,
            "HttpThreadsCount": self.http_threads,  # Orthanc's default
            "RemoteAccessAllowed": True,  # only reachable inside the namespace anyway
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomPort": 4242,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Host": "127.0.0.1",
                         "Ssl": False},
        }

    def start(self) -> Peer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "orthanc.json"
        config.write_text(json.dumps(self.configuration(), indent=2))
        self.process = ManagedProcess("orthanc", [ORTHANC_BINARY, str(config)],
                                      log_path=self.work_dir / "orthanc.log")

        def ready() -> bool:
            if not self.process or not self.process.alive():
                raise RuntimeError("Orthanc exited:\n" + (self.process.log_tail() if self.process else ""))
            plugins = requests.get(f"http://127.0.0.1:{HTTP_PORT}/plugins", timeout=2).json()
            return "dicom-web" in plugins

        wait_until(ready, timeout=60, what="Orthanc with its DICOMweb plugin")
        system = requests.get(f"http://127.0.0.1:{HTTP_PORT}/system", timeout=5).json()
        plugin = requests.get(f"http://127.0.0.1:{HTTP_PORT}/plugins/dicom-web", timeout=5).json()
        label = f"Orthanc {system.get('Version')} + DICOMweb {plugin.get('Version')}"
        return Peer("orthanc", f"http://127.0.0.1:{HTTP_PORT}/dicom-web", {}, self.process.pid, label)

    def instance_count(self) -> int:
        return int(requests.get(f"http://127.0.0.1:{HTTP_PORT}/statistics", timeout=10).json()["CountInstances"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def remove_files(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)
