"""Rules of docs/conventions.md that a linter does not hold: every setting is declared once, in
config/settings/base.py, so each can be set from the environment and is documented where it is read."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTING_WITH_A_FALLBACK = re.compile(r"getattr\(\s*settings\s*,\s*[\"'](?P<name>[A-Z0-9_]+)[\"']\s*,")


def _code_files() -> list[Path]:
    return [path for folder in ("apps", "tenants") for path in (REPO_ROOT / folder).rglob("*.py")
            if "migrations" not in path.parts]


def test_code_reads_no_setting_with_a_fallback_of_its_own():
    fallbacks = [f"{path.relative_to(REPO_ROOT)}: {match.group('name')}"
                 for path in _code_files() for match in SETTING_WITH_A_FALLBACK.finditer(path.read_text())]

    assert fallbacks == []


def test_every_setting_the_code_reads_is_declared():
    read = {match for path in _code_files() for match in re.findall(r"settings\.([A-Z][A-Z0-9_]+)", path.read_text())}

    assert sorted(name for name in read if not hasattr(settings, name)) == []
