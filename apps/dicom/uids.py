"""DICOM Unique Identifiers: syntax checks and lists (no Django imports).

PS3.5 §9.1: a UID is at most 64 characters of digits and dots; each component between dots is a
number without leading zeros (a single "0" is allowed), and no component is empty.
"""

from __future__ import annotations

import re
from typing import Final

UID_MAX_LENGTH: Final = 64
_UID_PATTERN: Final = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")


def uid_problem(value: object) -> str | None:
    """Why `value` is not a valid UID (PS3.5 §9.1), or None when it is one."""
    if not isinstance(value, str):
        return f"a UID must be text, not {type(value).__name__}"
    if not value:
        return "the UID is empty"
    if len(value) > UID_MAX_LENGTH:
        return f"the UID is {len(value)} characters long; at most {UID_MAX_LENGTH} are allowed"
    if _UID_PATTERN.fullmatch(value) is None:
        if re.fullmatch(r"[0-9.]+", value) is None:
            return "a UID holds only digits and dots"
        return "a UID is made of non-empty numeric components without leading zeros"
    return None


def is_valid_uid(value: object) -> bool:
    return uid_problem(value) is None


def split_uid_list(text: str) -> list[str]:
    """UID list matching values (PS3.4 §C.2.2.2.2): separated by commas (PS3.18) or backslashes (PS3.5)."""
    return [part.strip() for part in re.split(r"[,\\]", text) if part.strip()]
