"""Errors are JSON `{code, detail}` with the status that fits; unknown hosts are named."""

from __future__ import annotations

from tests.support.tenancy import http_on


def test_an_unknown_host_answers_404_unknown_tenant_naming_the_host(platform):
    answer = http_on(platform, "nobody-here.localhost").get("/api/v1/me/")
    assert answer.status_code == 404
    assert answer.json() == {"code": "unknown_tenant", "detail": "No tenant is served on host 'nobody-here.localhost'."}


def test_a_host_with_a_port_is_routed_by_its_name(platform):
    answer = http_on(platform, f"{platform.host('clinic_a')}:8000", platform.tokens[("clinic_a", "technologist")]).get("/api/v1/me/")
    assert answer.status_code == 200


def test_a_missing_object_answers_404_not_found(platform):
    answer = platform.http("clinic_a", "clinic_admin").get("/api/v1/users/987654321/")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"code": "not_found", "detail": "Not found."}


def test_a_wrong_method_answers_405_method_not_allowed(platform):
    answer = platform.http("clinic_a", "technologist").put("/api/v1/me/", json={})
    assert answer.status_code == 405
    assert answer.json() == {"code": "method_not_allowed", "detail": 'Method "PUT" not allowed.'}


def test_invalid_input_answers_400_with_field_errors(platform):
    answer = platform.http("clinic_a", "clinic_admin").post("/api/v1/users/", json={"username": "", "role": ""})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert set(answer.json()["detail"]) == {"username", "role"}


def test_malformed_json_answers_400_parse_error(platform):
    answer = platform.http("clinic_a", "clinic_admin").post(
        "/api/v1/users/", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"
    assert answer.json()["detail"].startswith("JSON parse error")


def test_an_unsupported_media_type_answers_415(platform):
    answer = platform.http("clinic_a", "clinic_admin").post(
        "/api/v1/users/", data="username=x", headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 415
    assert answer.json()["code"] == "unsupported_media_type"


def test_a_domain_error_from_a_service_keeps_its_code_and_status(platform):
    answer = platform.http("clinic_a", "clinic_admin").post("/api/v1/users/", json={"username": "x-1", "role": "operator"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_role"
