"""Per-tenant webhooks: signed deliveries to a real HTTP endpoint, retries while it is down, then
failed with the log kept; only admins manage them."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from apps.consults.models import WebhookDelivery
from tests.consults.support import Receiver, clinic_study, consult_request
from tests.support.platform import wait_until

WEBHOOKS = "/api/v1/webhooks/"


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def _register(platform: Any, url: str) -> dict[str, Any]:
    response = platform.http("clinic_a", "clinic_admin").post(WEBHOOKS, json={"url": url})
    assert response.status_code == 201, response.text
    return response.json()


def _unregister(platform: Any, endpoint_id: int) -> None:
    assert platform.http("clinic_a", "clinic_admin").delete(f"{WEBHOOKS}{endpoint_id}/").status_code == 204


def test_a_consult_event_reaches_the_endpoint_signed_with_its_secret(platform, workers, receiver):
    endpoint = _register(platform, receiver.url)
    try:
        consult_id = consult_request(platform, clinic_study(platform, slices=1)).json()["id"]
        wait_until(lambda: any(json.loads(body)["consult_id"] == consult_id for _, body in receiver.received),
                   timeout=60, message="the webhook to arrive")
    finally:
        _unregister(platform, endpoint["id"])
    headers, body = next((h, b) for h, b in receiver.received if json.loads(b)["consult_id"] == consult_id)
    signed = f"{headers['X-Imaging-Cloud-Timestamp']}.{headers['X-Imaging-Cloud-Delivery']}.".encode() + body
    expected = "sha256=" + hmac.new(endpoint["secret"].encode(), signed, hashlib.sha256).hexdigest()
    assert headers["X-Imaging-Cloud-Signature"] == expected
    assert headers["X-Imaging-Cloud-Event"] == "consult.submitted"
    assert json.loads(body)["state"] == "submitted"
    assert "patient" not in body.decode().lower()


def test_an_endpoint_that_is_down_is_retried_then_marked_failed_and_logged(platform, workers):
    down = Receiver(status=503)
    endpoint = _register(platform, down.url)
    try:
        consult_request(platform, clinic_study(platform, slices=1))
        with platform.schema("clinic_a"):
            delivery = wait_until(
                lambda: WebhookDelivery.objects.filter(endpoint_id=endpoint["id"], status="failed").first(),
                timeout=60, message="the delivery to fail")
        assert delivery.attempts == 3
        assert delivery.last_status_code == 503
        assert delivery.last_error == "http_5xx"
        assert len(down.received) == 3
        log = platform.http("clinic_a", "clinic_admin").get(f"{WEBHOOKS}{endpoint['id']}/").json()
        assert log["deliveries"][0]["status"] == "failed"
        assert "secret" not in log
    finally:
        _unregister(platform, endpoint["id"])
        down.close()


def test_only_admins_manage_webhooks(platform):
    assert platform.http("clinic_a", "referring_physician").post(WEBHOOKS, json={"url": "https://x.test/"}).status_code == 403
    assert platform.http("clinic_a", "clinic_admin").post(WEBHOOKS, json={"url": "ftp://x.test/"}).status_code == 400


def test_another_tenants_webhook_is_not_found(platform):
    endpoint = _register(platform, "https://hooks.example.test/a")
    try:
        assert platform.http("clinic_c", "clinic_admin").get(f"{WEBHOOKS}{endpoint['id']}/").status_code == 404
    finally:
        _unregister(platform, endpoint["id"])
