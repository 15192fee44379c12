"""The REST API's pagination: DRF's limit/offset, bounded so a huge number answers 400, not a 500.

DRF passes `offset` to the database as sent; past a bigint PostgreSQL refuses it, a 500. `limit`
is capped (DRF's `max_limit`), so no request asks for more rows than a page should hold."""

from __future__ import annotations

from typing import Final

from rest_framework import pagination
from rest_framework.request import Request

from apps.core.errors import InvalidInput

MAX_PAGE_SIZE: Final = 1000
MAX_OFFSET: Final = 10**9


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = MAX_PAGE_SIZE

    def get_offset(self, request: Request) -> int:
        offset = super().get_offset(request)
        if offset > MAX_OFFSET:
            raise InvalidInput(f"offset must be at most {MAX_OFFSET}.", code="invalid_pagination")
        return offset
