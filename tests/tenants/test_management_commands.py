"""`manage.py provision_tenant` and `manage.py issue_token`, run as the operator would (a subprocess
on the test database and S3 endpoint)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.platform import REPO_ROOT
from tests.support.tenancy import discard_tenant, http_on, new_slug

TOKEN_PATTERN = re.compile(r"^icl_[A-Za-z0-9_-]{43}$")


def manage(platform, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=REPO_ROOT, env=platform.worker_environment(),
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def provisioned_by_command(platform):
    slug = new_slug("cmd")
    completed = manage(platform, "provision_tenant", "--kind", "hospital", "--slug", slug, "--name", "Command Hospital")
    yield slug, completed
    discard_tenant(platform, slug)


def test_provision_tenant_provisions_and_reports_the_domain_and_admin(platform, provisioned_by_command):
    slug, completed = provisioned_by_command
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert lines[0] == f"Provisioned hospital {slug} (dedicated_cloud) on {slug}.localhost"
    assert re.fullmatch(r"admin user: admin  password: \S{16,}", lines[1])
    assert http_on(platform, f"{slug}.localhost").get("/accounts/login/").status_code == 200


def test_issue_token_prints_only_a_token_that_works_over_http(platform, provisioned_by_command):
    slug, _ = provisioned_by_command
    completed = manage(platform, "issue_token", "--tenant", slug, "--user", "reader", "--role", "radiologist")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.endswith("\n")
    token = completed.stdout.strip()
    assert completed.stdout.count("\n") == 1
    assert TOKEN_PATTERN.match(token)
    me = http_on(platform, f"{slug}.localhost", token).get("/api/v1/me/")
    assert me.status_code == 200
    assert (me.json()["username"], me.json()["role"]) == ("reader", "radiologist")


def test_provision_tenant_with_a_bad_slug_fails_with_the_error_code(platform):
    completed = manage(platform, "provision_tenant", "--kind", "clinic", "--slug", "Bad_Slug", "--name", "Bad")
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert "invalid_slug" in completed.stderr


@pytest.mark.parametrize("slug", ["pg-clinic", "information-schema"])
def test_provision_tenant_with_a_slug_naming_a_reserved_schema_fails_with_the_error_code(platform, slug):
    completed = manage(platform, "provision_tenant", "--kind", "clinic", "--slug", slug, "--name", "Reserved")
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert "invalid_slug" in completed.stderr and "reserves" in completed.stderr


def test_issue_token_for_an_unknown_tenant_fails_and_prints_no_token(platform):
    completed = manage(platform, "issue_token", "--tenant", "no-such-tenant", "--user", "nobody")
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert "No tenant 'no-such-tenant'" in completed.stderr
