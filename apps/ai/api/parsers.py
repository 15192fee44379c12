"""The JSON parser of the engine call-back: bounded in size and in nesting depth.

The call-back is reached from outside the platform by vendor systems. DRF's JSON parser reads a
body of any size and lets Python's recursion limit decide how deep it may nest, so a body of a few
kilobytes of ``[[[[…`` ended in a RecursionError and a 500. Here a body too large is 413
``payload_too_large`` and one nested too deep (or not JSON) is 400 ``parse_error``, both as
``{code, detail}`` (docs/security.md, "AI engines and callbacks").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]  # not in the stubs yet
from rest_framework.utils import json

from apps.core.errors import DomainError

# A call-back is a status, up to 20 series UIDs, an error text and a small summary: a few kilobytes.
MAX_CALLBACK_BODY_BYTES = 256 * 1024
# The call-back's own shape nests three levels; a summary may add a few.
MAX_CALLBACK_NESTING_DEPTH = 16


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    status = 413


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests objects and arrays deeper than `limit` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class CallbackJSONParser(JSONParser):
    def parse(self, stream: IO[Any], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        raw = stream.read(MAX_CALLBACK_BODY_BYTES + 1)
        if len(raw) > MAX_CALLBACK_BODY_BYTES:
            raise PayloadTooLarge(f"A call-back body is at most {MAX_CALLBACK_BODY_BYTES} bytes.")
        # DRF's own check of the charset: a text codec only (a bytes codec such as bz2 would inflate the body).
        encoding = get_encoding(parser_context or {})
        try:
            document = json.loads(raw.decode(encoding))  # strict: NaN and Infinity are refused
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
        except RecursionError as error:
            raise ParseError(f"JSON nested deeper than {MAX_CALLBACK_NESTING_DEPTH} levels.") from error
        if nesting_depth_exceeds(document, MAX_CALLBACK_NESTING_DEPTH):
            raise ParseError(f"JSON nested deeper than {MAX_CALLBACK_NESTING_DEPTH} levels.")
        return document
