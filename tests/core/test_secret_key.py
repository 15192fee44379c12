"""SECRET_KEY: the embedded run makes a random one and keeps it; every settings module refuses a
placeholder key unless the web server is bound to loopback (docs/security.md)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from config.secret_key import is_loopback_host, is_placeholder_secret_key

REPOSITORY = Path(__file__).resolve().parents[2]
REAL_KEY = "k3J9-8a7sQ2mZxV0pL4wN6rT1yB5cD8eF2gH3jK7lM9nP0qR"
PRINT_KEY = "import importlib, os; print(importlib.import_module(os.environ['DJANGO_SETTINGS_MODULE']).SECRET_KEY)"


def load_settings(module: str, data_dir: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "HOST", "DEBUG"}}
    env.update(DJANGO_SETTINGS_MODULE=module, IMAGING_CLOUD_DATA_DIR=str(data_dir), **environment)
    return subprocess.run(
        [sys.executable, "-c", PRINT_KEY],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("module", ["config.settings.local", "config.settings.production", "config.settings.test"])
def test_a_placeholder_key_is_refused_when_the_server_binds_every_interface(module, tmp_path):
    loaded = load_settings(module, tmp_path, SECRET_KEY="insecure-embedded-default-key-change-me-in-production",
                           HOST="0.0.0.0")
    assert loaded.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is a placeholder" in loaded.stderr


@pytest.mark.parametrize("module", ["config.settings.local", "config.settings.production"])
def test_a_placeholder_key_is_tolerated_on_loopback(module, tmp_path):
    loaded = load_settings(module, tmp_path, SECRET_KEY="change-me", HOST="127.0.0.1")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "change-me"


def test_a_real_key_is_used_on_any_address(tmp_path):
    loaded = load_settings("config.settings.production", tmp_path, SECRET_KEY=REAL_KEY, HOST="0.0.0.0")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == REAL_KEY


def test_the_embedded_run_makes_one_random_key_and_keeps_it_in_its_data_folder(tmp_path):
    first = load_settings("config.settings.local", tmp_path)
    second = load_settings("config.settings.local", tmp_path)
    other_folder = load_settings("config.settings.local", tmp_path / "other")
    key_file = tmp_path / "secret_key"
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout != other_folder.stdout
    assert key_file.read_text().strip() == first.stdout.strip()
    assert len(first.stdout.strip()) >= 64
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_production_settings_refuse_to_start_without_a_key(tmp_path):
    loaded = load_settings("config.settings.production", tmp_path, HOST="127.0.0.1")
    assert loaded.returncode != 0
    assert "SECRET_KEY must be set in production" in loaded.stderr
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("key", [
    "change-me", "CHANGE-ME", "my-changeme-key-that-is-long-enough-to-pass", "x" * 31, "django-insecure-abc",
    "insecure-embedded-default-key-change-me-in-production",
])
def test_placeholder_keys_are_recognised(key):
    assert is_placeholder_secret_key(key)


def test_a_long_random_key_is_not_a_placeholder():
    assert not is_placeholder_secret_key(REAL_KEY)


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("example.com", False),
])
def test_loopback_hosts_are_recognised(host, loopback):
    assert is_loopback_host(host) is loopback
