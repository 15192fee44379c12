"""Malformed REST API input answers a JSON `{code, detail}` 4xx, never a 500 or an HTML page:
NUL characters in list filters, impossible dates in date filters, JSON nested too deep, and
host names in another case or with the trailing dot of a fully qualified name."""

from __future__ import annotations

import uuid

import pytest

from tests.support.tenancy import http_on


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["code"] == code
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def nested_json(depth: int) -> bytes:
    return b'{"label": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("tenant", "role", "path", "parameter"),
    [
        ("clinic_a", "clinic_admin", "/api/v1/audit-events/", "action"),
        ("clinic_a", "clinic_admin", "/api/v1/audit-events/", "actor"),
        ("clinic_a", "clinic_admin", "/api/v1/audit-events/", "object_id"),
        ("hospital_b", "consult_coordinator", "/api/v1/consults/", "priority"),
        ("hospital_b", "consult_coordinator", "/api/v1/consults/", "clinic"),
        ("clinic_a", "technologist", "/api/v1/ai/jobs/", "state"),
        ("clinic_a", "technologist", "/api/v1/ai/jobs/", "study_instance_uid"),
    ],
)
def test_a_nul_character_in_a_rest_list_filter_answers_400(platform, tenant, role, path, parameter):
    response = platform.http(tenant, role).get(path, params={parameter: "ab\x00cd"})

    assert_json_error(response, 400, "invalid_query")
    assert parameter in response.json()["detail"]


def test_a_nul_character_in_an_operator_list_filter_answers_400(platform):
    response = platform.operator_http().get("/api/v1/referral-links/", params={"clinic": "\x00"})

    assert_json_error(response, 400, "invalid_query")


@pytest.mark.parametrize("parameter", ["since", "until"])
@pytest.mark.parametrize("value", ["2020-13-45", "2020-02-30", "2020-02-30T10:00:00", "2020-01-01T25:00:00", "yesterday"])
def test_an_impossible_or_unreadable_audit_date_answers_400(platform, parameter, value):
    response = platform.http("clinic_a", "clinic_admin").get("/api/v1/audit-events/", params={parameter: value})

    assert_json_error(response, 400, "invalid_filter")
    assert parameter in response.json()["detail"]


@pytest.mark.parametrize("value", ["2020-01-01", "2020-01-01T00:00:00", "2020-01-01T00:00:00+02:00"])
def test_a_valid_audit_since_date_filters_the_trail(platform, value):
    response = platform.http("clinic_a", "clinic_admin").get("/api/v1/audit-events/", params={"since": value})

    assert response.status_code == 200, response.text
    assert response.json()["count"] > 0


def test_a_future_audit_since_date_matches_nothing(platform):
    response = platform.http("clinic_a", "clinic_admin").get("/api/v1/audit-events/", params={"since": "2999-01-01"})

    assert response.status_code == 200, response.text
    assert response.json()["count"] == 0


def test_an_impossible_worklist_due_date_answers_400(platform):
    response = platform.http("hospital_b", "consult_coordinator").get(
        "/api/v1/consults/", params={"due_before": "2020-02-30T00:00:00"},
    )

    assert_json_error(response, 400, "invalid_filter")


def test_json_nested_too_deep_answers_400_parse_error(platform):
    response = platform.http("clinic_a", "technologist").post(
        "/api/v1/uploads/", data=nested_json(100_000), headers={"Content-Type": "application/json"},
    )

    assert_json_error(response, 400, "parse_error")


def test_json_nested_too_deep_to_the_operator_api_answers_400_parse_error(platform):
    response = platform.operator_http().post(
        "/api/v1/tenants/", data=nested_json(100_000), headers={"Content-Type": "application/json"},
    )

    assert_json_error(response, 400, "parse_error")


def test_json_nested_too_deep_on_an_unauthenticated_endpoint_is_never_a_500(platform):
    response = platform.http("clinic_a").post(
        f"/api/v1/ai/jobs/{uuid.uuid4()}/callback/", data=nested_json(100_000),
        headers={"Content-Type": "application/json", "Authorization": "Bearer not-a-callback-token"},
    )

    assert 400 <= response.status_code < 500, response.text
    assert response.headers["Content-Type"].startswith("application/json")


def test_json_nested_within_the_limit_is_parsed(platform):
    response = platform.http("clinic_a", "technologist").post(
        "/api/v1/uploads/", data=b'{"label": "nested", "extra": ' + b"[" * 20 + b"]" * 20 + b"}",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 201, response.text


@pytest.mark.parametrize("spelling", ["upper", "trailing_dot", "both"])
def test_a_tenant_host_in_another_case_or_with_a_trailing_dot_reaches_the_tenant(platform, spelling):
    host = platform.host("clinic_a")
    spelled = {"upper": host.upper(), "trailing_dot": f"{host}.", "both": f"{host.upper()}."}[spelling]

    response = http_on(platform, spelled, platform.tokens[("clinic_a", "technologist")]).get("/api/v1/me/")

    assert response.status_code == 200, response.text
    assert response.json()["username"]


def test_a_tenant_host_with_a_trailing_dot_and_a_port_reaches_the_tenant(platform):
    spelled = f"{platform.host('clinic_a').upper()}.:8000"

    response = http_on(platform, spelled, platform.tokens[("clinic_a", "technologist")]).get("/api/v1/me/")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-endpoint/", "/dicomweb/studies/not-a-uid/series", "/dicomweb/studies/1.2.3/series/x"],
)
def test_a_path_no_route_matches_answers_a_json_404_on_api_and_dicomweb_paths(platform, path):
    response = platform.http("clinic_a", "technologist").get(path)

    assert_json_error(response, 404, "not_found")


def test_a_path_no_route_matches_on_the_operator_domain_answers_a_json_404(platform):
    assert_json_error(platform.operator_http().get("/api/v1/no-such-endpoint/"), 404, "not_found")


def test_a_page_path_no_route_matches_keeps_its_html_404_page(platform):
    response = platform.http("clinic_a").get("/consults/no/such/page/")

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


def test_a_huge_page_limit_is_capped_not_a_500(platform):
    response = platform.http("clinic_a", "clinic_admin").get(
        "/api/v1/audit-events/", params={"limit": "99999999999999999999"},
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) <= 1000


def test_a_huge_page_offset_answers_400(platform):
    response = platform.http("clinic_a", "clinic_admin").get(
        "/api/v1/audit-events/", params={"offset": "99999999999999999999"},
    )

    assert_json_error(response, 400, "invalid_pagination")


def test_a_nul_character_in_a_json_object_key_answers_400_parse_error(platform):
    response = platform.operator_http().post(
        "/api/v1/referral-links/",
        data=b'{"clinic": "test-clinic-a", "hospital": "test-hospital-b", "sla_minutes": {"stat\\u0000": 60}}',
        headers={"Content-Type": "application/json"},
    )

    assert_json_error(response, 400, "parse_error")
    assert "NUL" in response.json()["detail"]


def test_a_nul_character_in_a_json_string_value_answers_400_parse_error(platform):
    response = platform.http("clinic_a", "technologist").post(
        "/api/v1/uploads/", data=b'{"label": "study\\u0000"}', headers={"Content-Type": "application/json"},
    )

    assert_json_error(response, 400, "parse_error")
