"""Scenario helpers for film tests: a study with a ready film, a link, a patient's browser session."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import requests

from tests.support.dicomweb import Study, ct_study, stow
from tests.support.platform import TenantHttp, wait_until

FILMS = "/api/v1/films/"


@dataclass
class IssuedLink:
    film_id: int
    link_id: int
    token: str
    code: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"/film/{self.token}"


def clinic_study(platform: Any, slices: int = 6, tenant: str = "clinic_a") -> Study:
    study = ct_study(slices, size=128)
    assert stow(platform.http(tenant, "technologist"), study.files).status_code == 200
    return study


def film_of(platform: Any, study: Study, *, layout: str = "2x2", tenant: str = "clinic_a") -> dict[str, Any]:
    created = platform.http(tenant, "technologist").post(FILMS, json={
        "study_instance_uid": study.study_instance_uid, "layout": layout})
    assert created.status_code == 201, created.text
    return wait_for_film(platform, created.json()["id"], tenant=tenant)


def wait_for_film(platform: Any, film_id: int, *, tenant: str = "clinic_a") -> dict[str, Any]:
    http = platform.http(tenant, "technologist")
    return wait_until(lambda: (body := http.get(f"{FILMS}{film_id}/").json())["state"] in ("ready", "failed") and body,
                      timeout=90, message=f"film {film_id} to be rendered")


def issue_link(platform: Any, film_id: int, tenant: str = "clinic_a", **body: Any) -> IssuedLink:
    response = platform.http(tenant, "technologist").post(f"{FILMS}{film_id}/links/", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    return IssuedLink(film_id, data["id"], data["token"], data["access_code"], data)


def patient(platform: Any, language: str = "en-US") -> TenantHttp:
    session = TenantHttp(platform.base_url, "localhost", None)
    session.headers["Accept-Language"] = language
    return session


def enter_code(session: requests.Session, link_path: str, code: str) -> requests.Response:
    page = session.get(link_path)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return session.post(link_path, data={"csrfmiddlewaretoken": match.group(1), "code": code}, allow_redirects=True)
