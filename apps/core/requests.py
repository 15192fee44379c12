"""Plain helpers about HTTP requests, shared by API views, pages and the audit trail."""

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address; X-Forwarded-For is trusted only from a configured proxy setup."""
    from django.conf import settings

    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")
