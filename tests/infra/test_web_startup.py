"""A web process imports its views before serving, so gunicorn's threads never import them at once
(concurrent first imports of pydicom's mutually importing modules left a process answering 500 to
every request in the multi-node run, docs/benchmarks.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
# Named by the public URL configuration (the patient film pages) and by the tenant one (DICOMweb).
VIEW_MODULES = ("apps.films.patient_views", "apps.dicomweb.views.resources")


@pytest.mark.parametrize("entry_point", ["config.wsgi", "config.asgi"])
def test_loading_the_web_application_imports_every_view_module(entry_point: str) -> None:
    probe = (f"import sys, {entry_point}; "
             f"print(','.join(name for name in {VIEW_MODULES!r} if name not in sys.modules))")
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPOSITORY, env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True, text=True, timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == ""
