"""`manage.py check --deploy` with the production settings and the environment docs/operations.md
documents for a deployment: Django's own security checks (HSTS, SSL redirect, secure cookies, a real
key, DEBUG off) and the API schema's checks pass with no warning at all."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def test_production_settings_pass_the_deployment_checks_without_a_warning():
    environment = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "HOST"}}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        HOST="0.0.0.0",
        ALLOWED_HOSTS=".imaging.example.com",
        PLATFORM_DOMAIN="imaging.example.com",
    )
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert checked.returncode == 0, checked.stderr + checked.stdout
    # The one silenced check is HSTS preload, off until a deployment submits its domain on purpose.
    assert "System check identified no issues (1 silenced)." in checked.stdout
