"""Object keys are built only from validated parts, never from raw user input."""

import re

from apps.core.errors import DomainError

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class UnsafeObjectKey(DomainError):
    code = "unsafe_object_key"
    status = 400


def object_key(*parts: str) -> str:
    """Join key parts with '/', refusing anything that could escape or confuse a prefix.

    Each part must start with a letter or digit and hold only letters, digits, '.', '_' or '-',
    and may not be '.' or '..' — so no '/', no traversal, no control characters.
    """
    for part in parts:
        if not isinstance(part, str) or not _SAFE_PART.match(part) or part in {".", ".."} or ".." in part:
            raise UnsafeObjectKey(f"Unsafe object key part: {part!r}")
    return "/".join(parts)


def validate_full_key(key: str) -> str:
    """Validate a key made of '/'-separated safe parts (used at the backend boundary)."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise UnsafeObjectKey(f"Unsafe object key: {key!r}")
    object_key(*key.split("/"))
    return key
