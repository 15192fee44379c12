"""Webhook destinations: loopback, link-local, private and unique-local networks are refused when a
webhook is saved and again at delivery (after resolving the name, connecting to the checked address);
WEBHOOK_ALLOWED_NETWORKS opens chosen ranges; signatures cover timestamp, delivery id and body; the
delivery log names only a coarse error class.

Every test here sends traffic to loopback only."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from apps.consults import webhook_transport, webhooks
from apps.consults.models import WebhookDelivery, WebhookEndpoint
from tests.consults.support import Receiver
from tests.support.platform import unique_suffix

WEBHOOKS = "/api/v1/webhooks/"
SECRET = "test-webhook-secret"


@pytest.fixture
def no_allowed_networks(settings: Any) -> None:
    """The production default: no private network is allowed."""
    settings.WEBHOOK_ALLOWED_NETWORKS = []


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def pending_delivery(platform: Any) -> Iterator[Any]:
    """Log a delivery to `url` straight in the clinic's schema (as if the name had resolved to a public
    address when the webhook was saved) and return a function that makes one attempt."""
    endpoint_ids: list[int] = []

    def deliver_to(url: str) -> WebhookDelivery:
        with platform.schema("clinic_a"):
            endpoint = WebhookEndpoint.objects.create(url=url, secret=SECRET)
            endpoint_ids.append(endpoint.pk)
            delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="consult.submitted",
                                                      payload={"event": "consult.submitted", "consult_id": "c-1"})
            webhooks.webhook_deliver(delivery_id=delivery.pk)
            return WebhookDelivery.objects.get(pk=delivery.pk)

    yield deliver_to
    with platform.schema("clinic_a"):
        WebhookEndpoint.objects.filter(pk__in=endpoint_ids).delete()


def _register(platform: Any, url: str) -> Any:
    return platform.http("clinic_a", "clinic_admin").post(WEBHOOKS, json={"url": url})


FORBIDDEN_URLS = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://172.16.5.5/hook",
    "http://[fc00::1]/hook",
    "http://[fd12:3456::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://localhost:8080/hook",
]


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
def test_a_webhook_to_a_non_public_network_is_refused_when_saved(platform, no_allowed_networks, url):
    url = f"{url}?run={unique_suffix()}"
    answer = _register(platform, url)
    assert answer.status_code == 400
    assert answer.json()["code"] == "webhook_destination_refused"
    assert "WEBHOOK_ALLOWED_NETWORKS" in answer.json()["detail"]
    with platform.schema("clinic_a"):
        assert not WebhookEndpoint.objects.filter(url=url).exists()


def test_a_webhook_url_with_credentials_is_refused(platform):
    answer = _register(platform, "https://user:pass@hooks.example.test/a")
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_webhook_url")


def test_an_allow_listed_network_may_be_saved(platform, loopback_allowed, receiver):
    answer = _register(platform, receiver.url)
    assert answer.status_code == 201
    platform.http("clinic_a", "clinic_admin").delete(f"{WEBHOOKS}{answer.json()['id']}/")


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook"])
def test_a_delivery_to_loopback_is_refused_after_resolving_and_sends_nothing(
    no_allowed_networks, receiver, pending_delivery, url,
):
    delivery = pending_delivery(url.format(port=receiver.server.server_address[1]))
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 1, "destination_refused")
    assert delivery.last_status_code is None
    assert receiver.received == []


def test_an_allow_listed_network_lets_a_delivery_reach_a_local_server(loopback_allowed, receiver, pending_delivery):
    delivery = pending_delivery(receiver.url)
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == ("succeeded", 204, "")
    assert len(receiver.received) == 1


def test_a_delivery_resolves_the_name_once_and_connects_to_the_checked_address(
    loopback_allowed, receiver, pending_delivery, monkeypatch,
):
    """A second lookup could answer differently (DNS rebinding); the request must not make one."""
    port = receiver.server.server_address[1]
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding_resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.test":
            lookups.append(host)
            # First answer loopback (allowed here); any later lookup would get a forbidden address.
            answer = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
            return real_getaddrinfo(answer, *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_resolver)
    delivery = pending_delivery(f"http://hooks.rebind.test:{port}/hook")
    assert (delivery.status, delivery.last_status_code) == ("succeeded", 204)
    assert lookups == ["hooks.rebind.test"]
    headers, _ = receiver.received[0]
    assert headers["Host"] == f"hooks.rebind.test:{port}"


def test_the_signature_covers_timestamp_delivery_id_and_body(loopback_allowed, receiver, pending_delivery):
    delivery = pending_delivery(receiver.url)
    headers, body = receiver.received[0]
    timestamp, delivery_id = headers["X-Imaging-Cloud-Timestamp"], headers["X-Imaging-Cloud-Delivery"]
    assert delivery_id == str(delivery.pk)
    signed = f"{timestamp}.{delivery_id}.".encode() + body
    assert headers["X-Imaging-Cloud-Signature"] == "sha256=" + hmac.new(SECRET.encode(), signed,
                                                                         hashlib.sha256).hexdigest()
    assert json.loads(body) == {"event": "consult.submitted", "consult_id": "c-1"}
    check = {"signature_header": headers["X-Imaging-Cloud-Signature"], "timestamp_header": timestamp,
             "delivery_id": delivery_id, "body": body, "now": int(timestamp) + 10}
    assert webhooks.signature_valid(SECRET, **check) is True
    assert webhooks.signature_valid(SECRET, **{**check, "body": body.replace(b"c-1", b"c-2")}) is False
    assert webhooks.signature_valid(SECRET, **{**check, "delivery_id": str(delivery.pk + 1)}) is False
    assert webhooks.signature_valid(SECRET, **{**check, "timestamp_header": str(int(timestamp) + 1)}) is False


def test_a_receiver_rejects_a_replay_outside_the_tolerance_window(loopback_allowed, receiver, pending_delivery):
    pending_delivery(receiver.url)
    headers, body = receiver.received[0]
    replayed_at = int(headers["X-Imaging-Cloud-Timestamp"]) + webhooks.RECOMMENDED_TOLERANCE_SECONDS + 1
    assert webhooks.signature_valid(
        SECRET, signature_header=headers["X-Imaging-Cloud-Signature"],
        timestamp_header=headers["X-Imaging-Cloud-Timestamp"], delivery_id=headers["X-Imaging-Cloud-Delivery"],
        body=body, now=replayed_at,
    ) is False


def test_the_delivery_log_keeps_the_error_class_not_the_remotes_answer(loopback_allowed, pending_delivery):
    leaky = Receiver(status=500, body=b"Traceback: db password hunter2 at 10.0.0.7")
    try:
        delivery = pending_delivery(leaky.url)
    finally:
        leaky.close()
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == ("pending", 500, "http_5xx")


def test_a_closed_port_is_logged_as_connect_refused(loopback_allowed, pending_delivery):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    delivery = pending_delivery(f"http://127.0.0.1:{closed_port}/hook")
    assert (delivery.last_status_code, delivery.last_error) == (None, "connect_refused")


def test_a_receiver_that_never_answers_is_logged_as_timeout(loopback_allowed, pending_delivery, monkeypatch):
    monkeypatch.setattr(webhooks, "READ_TIMEOUT_SECONDS", 0.5)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        delivery = pending_delivery(f"http://127.0.0.1:{silent.getsockname()[1]}/hook")
    finally:
        silent.close()
    assert (delivery.last_status_code, delivery.last_error) == (None, "timeout")


def test_a_tls_handshake_failure_is_logged_as_tls_error(loopback_allowed, receiver, pending_delivery):
    delivery = pending_delivery(receiver.url.replace("http://", "https://"))
    assert (delivery.last_status_code, delivery.last_error) == (None, "tls_error")


def test_the_api_delivery_log_shows_only_the_error_class(platform, loopback_allowed, pending_delivery):
    leaky = Receiver(status=502, body=b"upstream internal-host.corp refused")
    try:
        delivery = pending_delivery(leaky.url)
    finally:
        leaky.close()
    log = platform.http("clinic_a", "clinic_admin").get(f"{WEBHOOKS}{delivery.endpoint_id}/").json()
    assert [(entry["last_error"], entry["last_status_code"]) for entry in log["deliveries"]] == [("http_5xx", 502)]
    assert "internal-host" not in json.dumps(log)


def test_every_address_of_a_name_must_be_allowed(monkeypatch, no_allowed_networks):
    def mixed_answers(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]

    monkeypatch.setattr(socket, "getaddrinfo", mixed_answers)
    with pytest.raises(webhook_transport.DestinationRefused):
        webhook_transport.destination_resolve("https://hooks.mixed.test/a")



@pytest.fixture
def tls_receiver(tmp_path: Any) -> Iterator[tuple[Receiver, str]]:
    """A loopback HTTPS receiver whose self-signed certificate names hooks.tls.test; returns it and
    the certificate's path (the only CA the delivery is made to trust)."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=hooks.tls.test", "-addext", "subjectAltName=DNS:hooks.tls.test", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    running = Receiver()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    running.server.socket = context.wrap_socket(running.server.socket, server_side=True)
    yield running, str(cert)
    running.close()


def _resolve_to_loopback(monkeypatch: Any, *names: str) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host in names else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)


def test_tls_to_the_pinned_address_verifies_the_certificate_for_the_name(
    loopback_allowed, tls_receiver, pending_delivery, monkeypatch,
):
    import ssl

    receiver, cert = tls_receiver
    monkeypatch.setattr(webhook_transport, "_tls_context", lambda: ssl.create_default_context(cafile=cert))
    _resolve_to_loopback(monkeypatch, "hooks.tls.test", "other.tls.test")
    port = receiver.server.server_address[1]
    delivered = pending_delivery(f"https://hooks.tls.test:{port}/hook")
    assert (delivered.status, delivered.last_status_code) == ("succeeded", 204)
    assert receiver.received[0][0]["Host"] == f"hooks.tls.test:{port}"
    wrong_name = pending_delivery(f"https://other.tls.test:{port}/hook")
    assert (wrong_name.last_status_code, wrong_name.last_error) == (None, "tls_error")
    assert len(receiver.received) == 1
