"""How AE titles and peer addresses are compared and registered (docs/dimse.md)."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError

from apps.core.errors import InvalidInput
from tenants.models import AE_TITLE_MAX_LENGTH, ae_title_validator


def ae_title_normalized(value: str) -> str:
    """An AE title as compared: leading and trailing spaces are not significant (PS3.5 §6.2, AE VR)."""
    return (value or "").strip()


def address_normalized(value: str) -> str:
    """A source address as registered and compared: an IPv4 peer seen through a dual-stack socket
    (::ffff:a.b.c.d) is the IPv4 address."""
    parsed = ipaddress.ip_address(value.strip())
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def valid_peer(*, ae_title: str, host: str, port: int | None) -> tuple[str, str]:
    """The AE title and address a peer is registered and found under; InvalidInput otherwise."""
    title = ae_title_normalized(ae_title)
    if not title or len(title) > AE_TITLE_MAX_LENGTH:
        raise InvalidInput("An AE title has 1 to 16 characters.", code="invalid_ae_title")
    try:
        ae_title_validator(title)
    except ValidationError as error:
        raise InvalidInput("An AE title is printable ASCII without a backslash.", code="invalid_ae_title") from error
    try:
        address = address_normalized(host)
    except ValueError as error:
        raise InvalidInput(f"{host!r} is not an IP address: a peer is registered by the address its "
                           "associations come from.", code="invalid_host") from error
    if port is not None and not 1 <= port <= 65535:
        raise InvalidInput("A port is between 1 and 65535.", code="invalid_port")
    return title, address
