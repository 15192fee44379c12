"""Plain helpers about HTTP requests, shared by API views, pages and the audit trail."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid_address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address, by the one rule every part of the platform uses (docs/security.md).

    With TRUSTED_PROXY_HOPS = 0 it is REMOTE_ADDR and X-Forwarded-For is ignored: anyone can write
    that header. With N hops, each trusted proxy appended the address it saw to X-Forwarded-For, so
    the Nth address from the right is the one our outermost proxy saw; anything further left came
    from the client and may be forged. A header with fewer addresses than hops (the request did not
    come through every proxy) or an entry that is not an IP address falls back to REMOTE_ADDR.
    """
    remote_addr = request.META.get("REMOTE_ADDR") or None
    hops = int(getattr(settings, "TRUSTED_PROXY_HOPS", 0))
    if hops <= 0:
        return remote_addr
    forwarded = [entry for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if len(forwarded) < hops:
        return remote_addr
    return _valid_address(forwarded[-hops]) or remote_addr
