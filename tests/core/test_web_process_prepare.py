"""A web process loads what every request needs before its first request (config/startup.py): the
rendering stack has rendered once and the long-lived objects are out of the garbage collector's sight."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
import config.wsgi  # what gunicorn imports in each worker
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
print(gc.get_freeze_count())
"""


def test_the_wsgi_module_prepares_the_process_and_freezes_its_long_lived_objects():
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_rendering_warm_up_renders_both_media_types_without_a_dataset_of_the_tenant():
    from apps.dicom.rendering import warm_up

    warm_up()  # raises if the synthetic frame could not be rendered as JPEG or PNG
