"""Plain helpers about HTTP requests, shared by API views, pages and the audit trail."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime, time

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.errors import InvalidInput


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
    hops = settings.TRUSTED_PROXY_HOPS
    if hops <= 0:
        return remote_addr
    forwarded = [entry for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    if len(forwarded) < hops:
        return remote_addr
    return _valid_address(forwarded[-hops]) or remote_addr


def query_datetime(params: Mapping[str, str], name: str) -> datetime | None:
    """The ISO 8601 date-time (or date: its midnight) in query parameter `name`, aware in the
    current time zone when it names none; None when absent. Raises InvalidInput (400
    `invalid_filter`) for a value that is not one or names an impossible day or time
    (``2020-02-30``, ``2020-13-45``): a filter silently dropped would answer the wrong rows."""
    text = (params.get(name) or "").strip()
    if not text:
        return None
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = datetime.combine(day, time.min) if day is not None else None
    except ValueError:  # well-formed but impossible: Django raises rather than answer None
        moment = None
    if moment is None:
        raise InvalidInput(
            f"{name} must be an ISO 8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM[:SS][±HH:MM]) "
            f"that exists, not {text[:40]!r}.", code="invalid_filter",
        )
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
