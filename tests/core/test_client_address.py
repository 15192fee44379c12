"""The client's address, one rule for the whole platform (apps.core.requests.client_ip): with
TRUSTED_PROXY_HOPS = 0 it is REMOTE_ADDR and X-Forwarded-For is ignored; with N hops it is the Nth
address from the right of X-Forwarded-For. The audit trail records what that rule says."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.test import RequestFactory

from apps.audit.models import AuditEvent
from apps.core.requests import client_ip
from tests.support.platform import unique_suffix


def request_from(remote_addr: str, forwarded_for: str | None = None):
    headers = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().get("/", **headers)


def test_without_trusted_hops_the_client_is_remote_addr_whatever_x_forwarded_for_says(settings):
    settings.TRUSTED_PROXY_HOPS = 0
    assert client_ip(request_from("192.0.2.1", "198.51.100.7")) == "192.0.2.1"


def test_with_one_trusted_hop_the_client_is_the_address_our_proxy_appended(settings):
    settings.TRUSTED_PROXY_HOPS = 1
    # The client forged "1.2.3.4"; the proxy appended the address it really saw.
    assert client_ip(request_from("10.0.0.2", "1.2.3.4, 198.51.100.7")) == "198.51.100.7"


def test_with_two_trusted_hops_the_client_is_the_second_address_from_the_right(settings):
    settings.TRUSTED_PROXY_HOPS = 2
    assert client_ip(request_from("10.0.0.3", "1.2.3.4, 198.51.100.7, 10.0.0.2")) == "198.51.100.7"


def test_fewer_forwarded_addresses_than_trusted_hops_fall_back_to_remote_addr(settings):
    settings.TRUSTED_PROXY_HOPS = 2
    assert client_ip(request_from("10.0.0.3", "198.51.100.7")) == "10.0.0.3"
    assert client_ip(request_from("10.0.0.3")) == "10.0.0.3"


def test_a_forwarded_entry_that_is_not_an_ip_address_falls_back_to_remote_addr(settings):
    settings.TRUSTED_PROXY_HOPS = 1
    assert client_ip(request_from("10.0.0.2", "unknown")) == "10.0.0.2"
    assert client_ip(request_from("10.0.0.2", "2001:db8::1")) == "2001:db8::1"


def test_drf_throttles_trust_the_same_number_of_hops():
    assert django_settings.REST_FRAMEWORK["NUM_PROXIES"] == django_settings.TRUSTED_PROXY_HOPS


def _issue_token_and_read_its_audit_address(platform, **headers: str) -> str | None:
    answer = platform.http("clinic_a", "technologist").post(
        "/api/v1/tokens/", json={"name": f"address-{unique_suffix()}"}, headers=headers)
    assert answer.status_code == 201, answer.text
    with platform.schema("clinic_a"):
        return AuditEvent.objects.get(action="token.issue", object_id=str(answer.json()["detail"]["id"])).client_ip


def test_with_a_trusted_hop_the_audit_trail_records_the_forwarded_client_address(platform, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    address = _issue_token_and_read_its_audit_address(platform, **{"X-Forwarded-For": "1.2.3.4, 198.51.100.7"})
    assert address == "198.51.100.7"


def test_without_trusted_hops_the_audit_trail_ignores_a_spoofed_x_forwarded_for(platform, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    address = _issue_token_and_read_its_audit_address(platform, **{"X-Forwarded-For": "198.51.100.7"})
    assert address == "127.0.0.1"
