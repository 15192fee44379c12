"""The installed viewer for tests: its build's files, and its generated configuration run as a browser would."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings


def viewer_dist() -> Path:
    """OHIF's installed build; tests that need it are skipped only where it was never installed
    (.ci/run installs it with infra/viewer.sh before the tests)."""
    dist = Path(settings.VIEWER_DIST_DIR)
    if not (dist / "index.html").is_file():
        pytest.skip(f"The viewer is not installed in {dist}: run bash infra/viewer.sh")
    return dist


def evaluated_config(script: str, page_path: str) -> dict[str, Any]:
    """`window.config` after `/app-config.js` ran on a page at `page_path`, in Node (npm's, which the
    viewer's install needs anyway)."""
    node = shutil.which("node")
    assert node, "Node.js (installed with npm, as infra/viewer.sh needs) is missing"
    program = (f"var window = {{location: {{pathname: {json.dumps(page_path)}}}}};\n{script}\n"
               "process.stdout.write(JSON.stringify(window.config));")
    done = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)
