"""Production settings: HTTPS only (redirect and HSTS, preload off until chosen), https film links,
each overridable from the environment. Loaded in a fresh interpreter, as a deployment loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SETTINGS_SHOWN = ("SECURE_SSL_REDIRECT", "SECURE_REDIRECT_EXEMPT", "SECURE_HSTS_SECONDS",
                  "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "FILM_LINK_HTTPS")


def production_settings(**environment: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SECURE_", "FILM_LINK_"))}
    env.update(SECRET_KEY="a-production-secret-for-this-test", **environment)
    program = ("import json, config.settings.production as s; "
               f"print(json.dumps({{name: getattr(s, name) for name in {SETTINGS_SHOWN!r}}}))")
    result = subprocess.run([sys.executable, "-c", program], cwd=REPOSITORY, env=env, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_redirects_to_https_and_sends_hsts_for_a_year_with_subdomains_and_no_preload():
    assert production_settings() == {
        "SECURE_SSL_REDIRECT": True, "SECURE_REDIRECT_EXEMPT": ["^healthz$", "^readyz$"],
        "SECURE_HSTS_SECONDS": 31_536_000, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": False,
        "FILM_LINK_HTTPS": True,
    }


def test_production_https_settings_are_overridable_from_the_environment():
    shown = production_settings(SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0",
                                SECURE_HSTS_INCLUDE_SUBDOMAINS="false", SECURE_HSTS_PRELOAD="true",
                                FILM_LINK_HTTPS="false")
    assert (shown["SECURE_SSL_REDIRECT"], shown["SECURE_HSTS_SECONDS"], shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"],
            shown["SECURE_HSTS_PRELOAD"], shown["FILM_LINK_HTTPS"]) == (False, 0, False, True, False)
