"""/healthz says the process answers; /readyz checks the database, the broker and storage, each by name."""

from __future__ import annotations

import pytest
from django.test import override_settings

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@pytest.mark.parametrize("host", ["localhost", "test-clinic-a.localhost", "test-hospital-b.localhost"])
def test_healthz_answers_ok_on_every_domain(platform, host):
    from tests.support.tenancy import http_on

    answer = http_on(platform, host).get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_readyz_reports_database_broker_and_storage_each_ready(platform):
    answer = platform.operator_http(token="").get("/readyz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    for name, check in body["checks"].items():
        assert check["ok"] is True, name
        assert check["milliseconds"] >= 0


def test_readyz_answers_503_naming_the_broker_when_it_does_not_answer(platform):
    with override_settings(CELERY_BROKER_URL=CLOSED_PORT_BROKER):
        answer = platform.operator_http(token="").get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["broker"]["ok"] is False
    assert "Error" in body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["storage"]["ok"] is True


def test_readyz_answers_503_naming_storage_when_the_bucket_is_missing(platform):
    with override_settings(S3_BUCKET="no-such-bucket-for-readyz"):
        answer = platform.operator_http(token="").get("/readyz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["storage"]["ok"] is False
    assert "no-such-bucket-for-readyz" in checks["storage"]["error"]
    assert (checks["database"]["ok"], checks["broker"]["ok"]) == (True, True)


def test_readyz_answers_on_a_suspended_tenants_domain(platform):
    """Probes of a load balancer hit any domain; suspension refuses users, not probes."""
    from tenants.services import tenant_suspend
    from tests.support.tenancy import discard_tenant, http_on, provision_throwaway

    result = provision_throwaway(platform, kind="clinic")
    try:
        with platform.schema():
            tenant_suspend(slug=result.tenant.slug)
        assert http_on(platform, result.domain).get("/healthz").status_code == 200
        assert http_on(platform, result.domain).get("/api/v1/me/").status_code == 403
    finally:
        discard_tenant(platform, result.tenant.slug)
