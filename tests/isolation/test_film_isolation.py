"""Isolation invariant for the film endpoints: another tenant never sees, links or revokes a film,
and a film link opens only on the platform's own domain."""

from __future__ import annotations

import pytest

from tests.films.support import FILMS, clinic_study, film_of, issue_link


@pytest.fixture(scope="module")
def film(platform, workers):
    return film_of(platform, clinic_study(platform, slices=2))


def test_another_tenant_does_not_see_the_film(platform, film):
    http = platform.http("clinic_c", "clinic_admin")
    assert http.get(f"{FILMS}{film['id']}/").status_code == 404
    assert film["id"] not in [item["id"] for item in http.get(FILMS).json()["results"]]


def test_another_tenant_cannot_link_the_film(platform, film):
    response = platform.http("clinic_c", "clinic_admin").post(f"{FILMS}{film['id']}/links/", json={})
    assert response.status_code == 404


def test_a_token_of_one_tenant_does_not_authenticate_on_another(platform, film):
    token = platform.tokens[("clinic_a", "clinic_admin")]
    assert platform.http("clinic_c", token=token).get(f"{FILMS}{film['id']}/").status_code == 401


def test_a_film_link_grants_no_dicomweb_access(platform, film):
    link = issue_link(platform, film["id"])
    for tenant in ["clinic_a", "clinic_c"]:
        response = platform.http(tenant, token=link.token).get("/dicomweb/studies")
        assert response.status_code == 401
