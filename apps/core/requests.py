"""Plain helpers about HTTP requests, shared by API views, pages and the audit trail."""

from collections.abc import Mapping
from datetime import datetime, time

from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.errors import InvalidInput


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address; X-Forwarded-For is trusted only from a configured proxy setup."""
    from django.conf import settings

    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")


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
