"""The REST API's JSON parser: DRF's, refusing hostile bodies with 400 rather than a 500.

A body of a few kilobytes of `[[[[…` makes the standard library's decoder raise RecursionError,
which DRF does not catch (a 500, on endpoints that parse before authenticating, such as engine
call-backs). Bodies nested deeper than any request of this API needs are refused as well, so no
code after parsing (serializers, JSON fields, renderers) ever walks an unbounded depth; and so are
strings with a NUL character, which the database would refuse when a JSON field is saved (DRF's
CharField refuses them, its DictField and JSONField do not)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Final

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from apps.core.errors import DomainError

MAX_JSON_NESTING: Final = 64


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    status = 413


def json_document_problem(document: Any, *, max_nesting: int) -> str | None:
    """Why a parsed body is refused, or None: objects and arrays nested deeper than `max_nesting` (a
    top-level object is depth 1), or a string (value or key) holding a NUL character, which no
    PostgreSQL text or jsonb value can store. Found without recursion."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "a string holds a NUL character (\\u0000)"
            continue
        if isinstance(value, Mapping):
            children: list[Any] = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_nesting:
            return f"objects and arrays nest more than {max_nesting} deep"
        pending.extend((child, depth + 1) for child in children)
    return None


class JSONParser(parsers.JSONParser):
    """Endpoints with a narrower contract (an engine's call-back) subclass it with tighter bounds."""

    max_nesting: int = MAX_JSON_NESTING
    # None: Django's DATA_UPLOAD_MAX_MEMORY_SIZE bounds the body.
    max_body_bytes: int | None = None

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        if self.max_body_bytes is not None:
            raw = stream.read(self.max_body_bytes + 1)
            if len(raw) > self.max_body_bytes:
                raise PayloadTooLarge(f"The body is larger than the {self.max_body_bytes} bytes accepted here.")
            stream = io.BytesIO(raw)
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - objects and arrays nest more than {self.max_nesting} deep") from None
        problem = json_document_problem(document, max_nesting=self.max_nesting)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return document
