"""The REST API's JSON parser refuses bodies nested deeper than MAX_JSON_NESTING (400 parse_error)."""

from __future__ import annotations

import io

import pytest
from rest_framework.exceptions import ParseError

from apps.core.parsers import MAX_JSON_NESTING, JSONParser, json_nesting_exceeds


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def parse(text: str):
    return JSONParser().parse(io.BytesIO(text.encode()), "application/json", {})


def test_a_body_nested_up_to_the_limit_is_parsed():
    assert parse(nested(MAX_JSON_NESTING)) is not None


@pytest.mark.parametrize("depth", [MAX_JSON_NESTING + 1, 5_000, 200_000])
def test_a_body_nested_past_the_limit_is_a_parse_error(depth):
    with pytest.raises(ParseError, match="nest more than"):
        parse(nested(depth))


def test_objects_count_as_levels_like_arrays():
    document = {"a": [{"b": [1]}]}
    assert (json_nesting_exceeds(document, 3), json_nesting_exceeds(document, 4)) == (True, False)


def test_scalars_have_no_depth():
    assert json_nesting_exceeds("text", 0) is False
