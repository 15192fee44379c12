"""The OpenAPI schema at /api/schema/ and the interactive docs at /api/docs/, on the platform and tenant domains."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture(scope="module")
def tenant_schema(platform):
    answer = platform.http("clinic_a").get("/api/schema/")
    assert answer.status_code == 200, answer.text[:500]
    return answer


@pytest.fixture(scope="module")
def platform_schema(platform):
    answer = platform.operator_http(token="").get("/api/schema/", params={"format": "json"})
    assert answer.status_code == 200, answer.text[:500]
    return answer


def test_the_schema_is_openapi_3_yaml_without_authentication(tenant_schema):
    assert tenant_schema.headers["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(tenant_schema.text)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Imaging Cloud API"


def test_the_schema_is_also_served_as_json(platform_schema):
    assert platform_schema.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert platform_schema.json()["openapi"].startswith("3.")


def test_the_schema_declares_bearer_authentication(tenant_schema):
    document = yaml.safe_load(tenant_schema.text)
    assert document["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    me = document["paths"]["/api/v1/me/"]["get"]
    assert {"bearerAuth": []} in me["security"]


def test_a_tenant_domains_schema_lists_the_tenant_api_and_not_the_operator_api(tenant_schema):
    paths = yaml.safe_load(tenant_schema.text)["paths"]
    assert {"/api/v1/me/", "/api/v1/users/", "/api/v1/tokens/", "/api/v1/audit-events/"} <= set(paths)
    assert not any(path.startswith("/api/v1/tenants/") for path in paths)


def test_the_platform_domains_schema_lists_the_operator_api(platform_schema):
    paths = platform_schema.json()["paths"]
    assert {"/api/v1/me/", "/api/v1/tenants/", "/api/v1/tenants/{slug}/", "/api/v1/referral-links/"} <= set(paths)


def test_the_interactive_docs_render_and_point_at_the_schema(platform):
    answer = platform.http("clinic_a").get("/api/docs/")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "swagger-ui" in answer.text
    # The split view's start-up script, served beside the page, points Swagger UI at the schema.
    script = platform.http("clinic_a").get("/api/docs/", params={"script": ""})
    assert script.status_code == 200
    assert "/api/schema/" in script.text
