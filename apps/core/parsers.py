"""The REST API's JSON parser: DRF's, with a bound on nesting so a hostile body answers 400.

A body of a few kilobytes of `[[[[…` makes the standard library's decoder raise RecursionError,
which DRF does not catch (a 500, on endpoints that parse before authenticating, such as engine
call-backs). Bodies nested deeper than any request of this API needs are refused as well, so no
code after parsing (serializers, JSON fields, renderers) ever walks an unbounded depth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_NESTING: Final = 64


def json_nesting_exceeds(document: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than `limit` (a top-level object is depth 1), found
    without recursion."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, Mapping):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - objects and arrays nest more than {MAX_JSON_NESTING} deep") from None
        if json_nesting_exceeds(document, MAX_JSON_NESTING):
            raise ParseError(f"JSON parse error - objects and arrays nest more than {MAX_JSON_NESTING} deep")
        return document
