"""Tenant isolation on every DICOMweb route: no token → 401; another tenant's token → 401; a tenant
never sees another tenant's studies, even by their UIDs (404 or an empty result)."""

from __future__ import annotations

import pytest

from tests.support.dicomweb import ct_study, multipart_body, stow


@pytest.fixture(scope="module")
def study_of_clinic_a(platform):
    study = ct_study(1)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    return study


def routes(study) -> list[tuple[str, str]]:
    s, se, i = study.study_instance_uid, study.series_instance_uids[0], study.sop_instance_uids[0]
    series, instance = f"/studies/{s}/series/{se}", f"/studies/{s}/series/{se}/instances/{i}"
    gets = [
        "/studies", f"/studies?StudyInstanceUID={s}", "/series", "/instances", f"/studies/{s}", f"/studies/{s}/metadata",
        f"/studies/{s}/rendered", f"/studies/{s}/thumbnail", f"/studies/{s}/series", f"/studies/{s}/instances",
        series, f"{series}/metadata", f"{series}/rendered", f"{series}/thumbnail", f"{series}/instances", instance,
        f"{instance}/metadata", f"{instance}/rendered", f"{instance}/thumbnail", f"{instance}/bulkdata/7FE00010",
        f"{instance}/frames/1", f"{instance}/frames/1/rendered", f"{instance}/frames/1/thumbnail",
    ]
    return (
        [("GET", path) for path in gets]
        + [("POST", "/studies"), ("POST", f"/studies/{s}")]
        + [("DELETE", series), ("DELETE", f"/studies/{s}")]
    )


def call(http, method: str, path: str):
    if method == "POST":
        body, content_type = multipart_body(ct_study(1).files)
        return http.post(f"/dicomweb{path}", data=body, headers={"Content-Type": content_type})
    return http.request(method, f"/dicomweb{path}")


def test_every_route_needs_a_token(platform, study_of_clinic_a):
    http = platform.http("clinic_a")
    for method, path in routes(study_of_clinic_a):
        response = call(http, method, path)
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "not_authenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_of_another_tenant_is_refused_on_every_route(platform, study_of_clinic_a):
    token_of_a = platform.tokens[("clinic_a", "clinic_admin")]
    http = platform.http("clinic_c", token=token_of_a)
    for method, path in routes(study_of_clinic_a):
        response = call(http, method, path)
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "authentication_failed"


def test_a_malformed_token_is_refused(platform):
    http = platform.http("clinic_a", token="not-a-real-token")
    assert http.get("/dicomweb/studies").status_code == 401
    basic = platform.http("clinic_a")
    assert basic.get("/dicomweb/studies", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_another_tenant_cannot_reach_a_study_by_its_uids(platform, study_of_clinic_a):
    http = platform.http("clinic_c", "clinic_admin")
    for method, path in routes(study_of_clinic_a):
        if method == "POST":
            continue  # storing into its own archive is clinic C's right; covered by STOW tests
        response = call(http, method, path)
        if method == "GET" and response.status_code == 200:
            # Searches answer with nothing of clinic A's.
            assert response.headers["Content-Type"].startswith("application/dicom+json"), path
            assert study_of_clinic_a.study_instance_uid not in response.text, path
        else:
            assert response.status_code == 404, (method, path, response.status_code)


def test_clinic_a_still_has_its_study(platform, study_of_clinic_a):
    response = platform.http("clinic_a", "technologist").get(
        f"/dicomweb/studies/{study_of_clinic_a.study_instance_uid}/metadata"
    )
    assert response.status_code == 200


def test_cors_preflight_needs_no_token_and_answers_for_any_origin(platform):
    http = platform.http("clinic_a")
    response = http.options("/dicomweb/studies", headers={
        "Origin": "https://viewer.example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, accept",
    })
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://viewer.example.org")
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_cross_origin_answers_expose_the_dicomweb_headers(platform, study_of_clinic_a):
    response = platform.http("clinic_a", "technologist").get(
        "/dicomweb/studies", params={"limit": "1"},
        headers={"Origin": "https://viewer.example.org", "Accept": "application/dicom+json"},
    )
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://viewer.example.org")
    assert "warning" in response.headers["Access-Control-Expose-Headers"].lower()
