"""Headers that keep pages and answers safe in a browser: the API docs load only the platform's own
assets, pages carry a Content-Security-Policy whose nonce is the one on their inline scripts, and JSON
answers are never stored by a browser or proxy (docs/security.md)."""

from __future__ import annotations

import re

import pytest


def policy_of(answer) -> dict[str, list[str]]:
    directives = {}
    for directive in answer.headers["Content-Security-Policy"].split(";"):
        name, *values = directive.split()
        directives[name] = values
    return directives


@pytest.mark.parametrize("domain", ["platform", "tenant"])
def test_the_api_docs_load_only_assets_the_platform_serves_itself(platform, domain):
    client = platform.operator_http(token="") if domain == "platform" else platform.http("clinic_a")
    page = client.get("/api/docs/")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert page.status_code == 200
    assert assets, page.text[:500]
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the platform"
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 100, asset


def test_the_api_docs_start_their_script_without_an_inline_script(platform):
    page = platform.operator_http(token="").get("/api/docs/")
    assert "'unsafe-inline'" not in policy_of(page)["script-src"]
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None, "an inline script would be blocked"


def test_a_page_forbids_framing_plugins_and_foreign_scripts(platform):
    page = platform.http("clinic_a").get("/accounts/login/")
    policy = policy_of(page)
    assert page.status_code == 200
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"]


def test_json_answers_are_never_stored(platform):
    answer = platform.http("clinic_a", "technologist").get("/api/v1/me/")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "private, no-store"


def test_json_errors_are_never_stored_either(platform):
    answer = platform.http("clinic_a", token="not-a-token").get("/api/v1/me/")
    assert answer.status_code == 401
    assert answer.headers["Cache-Control"] == "private, no-store"
