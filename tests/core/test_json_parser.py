"""The REST API's JSON parser refuses bodies nested deeper than MAX_JSON_NESTING (400 parse_error)."""

from __future__ import annotations

import io

import pytest
from rest_framework.exceptions import ParseError

from apps.core.parsers import MAX_JSON_NESTING, JSONParser, json_document_problem


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
    assert json_document_problem(document, max_nesting=3) == "objects and arrays nest more than 3 deep"
    assert json_document_problem(document, max_nesting=4) is None


def test_scalars_have_no_depth():
    assert json_document_problem("text", max_nesting=0) is None


@pytest.mark.parametrize("body", ['{"label": "a\\u0000b"}', '{"a\\u0000": 1}', '[[["\\u0000"]]]'])
def test_a_string_or_key_with_a_nul_character_is_a_parse_error(body):
    with pytest.raises(ParseError, match="NUL"):
        parse(body)


def test_an_escaped_backslash_before_u0000_is_no_nul_character():
    assert parse('{"label": "a\\\\u0000"}') == {"label": "a\\u0000"}
