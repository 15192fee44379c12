"""The rule every settings module applies to SECRET_KEY: no placeholder key on a reachable address.

A key that is public (a placeholder from an example file, the constant an earlier embedded run
used, Django's `django-insecure-` start key) or too short lets anyone forge sessions, CSRF tokens
and signed links. It is tolerated only while the web server is bound to loopback, where nobody
else can reach it. See docs/security.md, "Secrets, debug and binding".
"""

import ipaddress

from django.core.exceptions import ImproperlyConfigured

# Keys that have been published: example files, documentation and an earlier embedded default.
KNOWN_PLACEHOLDER_KEYS = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "secret",
        "secret-key",
        "insecure-embedded-default-key-change-me-in-production",
    }
)
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "django-insecure-", "<50+ random characters>")
MINIMUM_LENGTH = 32


def is_placeholder_secret_key(key: str) -> bool:
    lowered = key.strip().lower()
    return (
        lowered in KNOWN_PLACEHOLDER_KEYS
        or any(marker in lowered for marker in PLACEHOLDER_MARKERS)
        or len(lowered) < MINIMUM_LENGTH
    )


def is_loopback_host(host: str) -> bool:
    if host.strip().lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_placeholder_secret_key(key: str, *, bind_host: str) -> None:
    """Raise ImproperlyConfigured for a placeholder key unless the server is bound to loopback."""
    if is_placeholder_secret_key(key) and not is_loopback_host(bind_host):
        raise ImproperlyConfigured(
            f"SECRET_KEY is a placeholder or shorter than {MINIMUM_LENGTH} characters, and the web server "
            f"binds {bind_host!r} (HOST), which is not loopback. Set SECRET_KEY to a long random value, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(64))"`.'
        )
