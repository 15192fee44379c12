"""Outbound webhook HTTP that cannot be aimed at the platform's own network (docs/security.md, Webhooks).

A tenant admin chooses the URL, so without a check a webhook would be a way to make our workers
POST to loopback services, the cloud metadata endpoint (169.254.169.254) or other hosts on the
private network. The destination's name is resolved once, every address it resolves to is checked,
and the connection goes to that checked address (TLS still verifies the certificate for the name),
so a DNS answer that changes between the check and the connection (rebinding) cannot redirect it.

Only public (globally routable) addresses are allowed, plus the networks an on-premises deployment
lists in WEBHOOK_ALLOWED_NETWORKS. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3 import exceptions as urllib3_errors

from apps.core.errors import InvalidInput

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"http": 80, "https": 443}


class DestinationRefused(InvalidInput):
    """The webhook URL names a host on a loopback, link-local, private or otherwise non-public network."""

    code = "webhook_destination_refused"


@dataclass(frozen=True)
class Destination:
    """A webhook URL taken apart, with the one checked address the request will connect to."""

    scheme: str
    hostname: str
    port: int
    path: str
    address: IpAddress

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@lru_cache(maxsize=8)
def _parse_networks(networks: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def allowed_networks() -> tuple[IpNetwork, ...]:
    return _parse_networks(tuple(settings.WEBHOOK_ALLOWED_NETWORKS))


def _plain(address: IpAddress) -> IpAddress:
    # ::ffff:127.0.0.1 reaches 127.0.0.1: judge an IPv4-mapped address as the IPv4 address it is.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_allowed(address: IpAddress) -> bool:
    address = _plain(address)
    if any(address in network for network in allowed_networks() if network.version == address.version):
        return True
    # is_global is False for loopback, link-local, private (10/8, 172.16/12, 192.168/16, fc00::/7),
    # shared (100.64/10), unspecified and reserved ranges.
    return address.is_global and not address.is_multicast


def url_parts(url: str) -> tuple[str, str, int, str]:
    """(scheme, hostname, port, path with query) of an http(s) URL, or InvalidInput."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as failure:
        raise InvalidInput("The webhook URL's port is not a number from 1 to 65535.",
                           code="invalid_webhook_url") from failure
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidInput("A webhook URL must be http(s) with a host name.", code="invalid_webhook_url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("A webhook URL must not carry credentials; the signature authenticates us.",
                           code="invalid_webhook_url")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme], path


def _literal_address(hostname: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(hostname)
    except ValueError:
        return None


def resolve_addresses(hostname: str, port: int) -> list[IpAddress]:
    """Every address the name resolves to (raises socket.gaierror when it resolves to none)."""
    literal = _literal_address(hostname)
    if literal is not None:
        return [literal]
    answers = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    # The scope suffix of a link-local IPv6 answer (fe80::1%eth0) is not part of the address.
    return [ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers]


def destination_refusal(hostname: str, addresses: list[IpAddress]) -> DestinationRefused | None:
    refused = [address for address in addresses if not address_allowed(address)]
    if not refused:
        return None
    return DestinationRefused(
        f"The webhook host {hostname!r} is on a network webhooks may not reach ({refused[0]}); "
        "use a public address, or ask the operator to allow the network (WEBHOOK_ALLOWED_NETWORKS)."
    )


def destination_check_on_save(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, a forbidden address. A name that does not resolve
    yet is accepted here: the check that counts runs again at every delivery."""
    scheme, hostname, port, _ = url_parts(url)
    try:
        addresses = resolve_addresses(hostname, port)
    except (socket.gaierror, UnicodeError):
        return
    refusal = destination_refusal(hostname, addresses)
    if refusal is not None:
        raise refusal


def destination_resolve(url: str) -> Destination:
    """Resolve and check the URL's host for one delivery. Every address must be allowed (a name with
    one public and one private answer is refused), and the first is the one connected to."""
    scheme, hostname, port, path = url_parts(url)
    addresses = resolve_addresses(hostname, port)
    refusal = destination_refusal(hostname, addresses)
    if refusal is not None:
        raise refusal
    return Destination(scheme=scheme, hostname=hostname, port=port, path=path, address=addresses[0])


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def post_to_destination(
    destination: Destination, *, body: bytes, headers: Mapping[str, str], connect_timeout: float,
    read_timeout: float,
) -> int:
    """POST the body to the destination's checked address and return the status code. The answer's
    body is never read (it could carry anything the remote chose, and be endless)."""
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    pool: urllib3.HTTPConnectionPool
    if destination.scheme == "https":
        # Connect to the address; SNI and certificate checks still use the name the tenant gave.
        pool = urllib3.HTTPSConnectionPool(
            str(destination.address), destination.port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=destination.hostname, assert_hostname=destination.hostname,
            ssl_context=_tls_context(), cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(destination.address), destination.port, timeout=timeout,
                                          retries=False, maxsize=1)
    try:
        response = pool.urlopen("POST", destination.path, body=body,
                                headers={**headers, "Host": destination.host_header},
                                redirect=False, retries=False, preload_content=False)
        status = response.status
        # Closed unread: a receiver streaming an endless body must not hold the worker.
        response.close()
        return status
    finally:
        pool.close()


def error_class(failure: BaseException) -> str:
    """A coarse, fixed name for why a delivery failed: never the exception's text or the remote's
    answer, which could echo internal details back to the tenant."""
    if isinstance(failure, urllib3_errors.MaxRetryError) and failure.reason is not None:
        failure = failure.reason
    if isinstance(failure, DestinationRefused):
        return "destination_refused"
    if isinstance(failure, socket.gaierror | UnicodeError):
        return "dns_error"
    # urllib3 2 makes NewConnectionError a subclass of ConnectTimeoutError: ask about it first.
    if isinstance(failure, urllib3_errors.NewConnectionError | ConnectionError):
        chain: BaseException | None = failure
        while chain is not None:
            if isinstance(chain, ConnectionRefusedError):
                return "connect_refused"
            if isinstance(chain, TimeoutError | socket.timeout):
                return "timeout"
            chain = chain.__cause__ or chain.__context__
        return "connect_failed"
    if isinstance(failure, urllib3_errors.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(failure, urllib3_errors.SSLError | ssl.SSLError):
        return "tls_error"
    if isinstance(failure, urllib3_errors.ProtocolError):
        return "connection_dropped"
    return "http_error"


def status_error_class(status: int) -> str:
    """'' for a 2xx answer, otherwise http_3xx (redirects are not followed), http_4xx or http_5xx."""
    if 200 <= status < 300:
        return ""
    return f"http_{status // 100}xx"
