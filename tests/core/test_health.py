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


def test_readyz_tells_anyone_ok_per_check_and_nothing_more(platform):
    answer = platform.operator_http(token="").get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ready", "checks": {"database": "ok", "broker": "ok", "storage": "ok", "disk": "ok"},
    }


def test_readyz_gives_an_operator_the_timing_of_each_check(platform):
    answer = platform.operator_http().get("/readyz")
    assert answer.status_code == 200
    details = answer.json()["details"]
    assert set(details) == {"database", "broker", "storage", "disk"}
    for name, check in details.items():
        assert check["ok"] is True, name
        assert check["milliseconds"] >= 0


def test_readyz_gives_no_details_to_a_tenant_admin(platform):
    answer = platform.http("clinic_a", "clinic_admin").get("/readyz")
    assert answer.status_code == 200
    assert "details" not in answer.json()


def test_readyz_answers_503_naming_the_broker_when_it_does_not_answer(platform):
    with override_settings(CELERY_BROKER_URL=CLOSED_PORT_BROKER):
        anonymous = platform.operator_http(token="").get("/readyz")
        operator = platform.operator_http().get("/readyz")
    assert anonymous.status_code == operator.status_code == 503
    assert anonymous.json() == {
        "status": "not_ready", "checks": {"database": "ok", "broker": "failed", "storage": "ok", "disk": "ok"},
    }
    assert "127.0.0.1:1" not in anonymous.text
    assert "Error" in operator.json()["details"]["broker"]["error"]


def test_readyz_answers_503_naming_storage_when_the_bucket_is_missing(platform):
    with override_settings(S3_BUCKET="no-such-bucket-for-readyz"):
        anonymous = platform.operator_http(token="").get("/readyz")
        operator = platform.operator_http().get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "failed", "disk": "ok"}
    assert "no-such-bucket-for-readyz" not in anonymous.text
    assert "no-such-bucket-for-readyz" in operator.json()["details"]["storage"]["error"]


def test_readyz_answers_on_time_when_storage_accepts_connections_and_never_answers(platform):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with override_settings(S3_ENDPOINT_URL=endpoint, READINESS_CHECK_TIMEOUT_SECONDS=1.0):
            started = time.monotonic()
            answer = platform.operator_http().get("/readyz")
            took = time.monotonic() - started
    finally:
        silent.close()
    assert answer.status_code == 503
    assert answer.json()["checks"]["storage"] == "failed"
    assert answer.json()["details"]["storage"]["error"] == "no answer within 1.0 s"
    assert took < 3


def test_readyz_is_not_ready_when_the_disk_is_nearly_full(platform):
    with override_settings(READINESS_MIN_FREE_DISK_PERCENT=100.0):
        answer = platform.operator_http().get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["disk"] == "failed"
    assert "% free, under 100.0 %" in answer.json()["details"]["disk"]["error"]


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
