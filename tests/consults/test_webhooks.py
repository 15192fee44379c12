"""Per-tenant webhooks: signed deliveries to a real HTTP endpoint, retries while it is down, then
failed with the log kept; only admins manage them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.consults.models import WebhookDelivery
from tests.consults.support import clinic_study, consult_request
from tests.support.platform import wait_until

WEBHOOKS = "/api/v1/webhooks/"


class Receiver:
    """A small HTTP server that records what it receives and answers with `status`."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()


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
    expected = "sha256=" + hmac.new(endpoint["secret"].encode(), body, hashlib.sha256).hexdigest()
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
