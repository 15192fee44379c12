"""The process role: `manage.py dimse_serve` listens on the port it is given and stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

from tests.support.dimse import called_ae_title, echoscu, free_port, registered_peer
from tests.support.platform import REPO_ROOT


def test_dimse_serve_answers_an_echo_and_stops_on_sigterm(platform: Any) -> None:
    port = free_port()
    calling = registered_peer(platform, "clinic_a")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dimse_serve", "--bind", "127.0.0.1", "--port", str(port)], cwd=REPO_ROOT,
        env=platform.worker_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "DIMSE listening on" in line:
                break
        assert line.strip() == f"DIMSE listening on 127.0.0.1:{port}"

        assert echoscu(port, calling=calling, called=called_ae_title(platform, "clinic_a")).returncode == 0
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
