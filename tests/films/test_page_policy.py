"""The patient page's inline scripts run under its Content-Security-Policy: each carries the nonce
that the page's own policy allows, and no other script may run (docs/security.md)."""

from __future__ import annotations

import re

import pytest

from tests.core.test_page_security import policy_of
from tests.films.support import clinic_study, enter_code, film_of, issue_link, patient


@pytest.fixture(scope="module")
def film(platform, workers):
    return film_of(platform, clinic_study(platform))


def test_the_film_pages_inline_scripts_carry_the_nonce_of_its_policy(platform, film):
    link = issue_link(platform, film["id"])
    page = enter_code(patient(platform), link.path, link.code)
    nonces = set(re.findall(r'<script nonce="([^"]+)"', page.text))
    allowed = [value for value in policy_of(page)["script-src"] if value.startswith("'nonce-")]
    assert page.status_code == 200
    assert len(nonces) == 1, page.text[:500]
    assert allowed == [f"'nonce-{nonces.pop()}'"]
    assert re.search(r"<script(?![^>]*nonce=)", page.text) is None
