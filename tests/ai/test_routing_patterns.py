"""Routing-rule patterns: RE2 syntax, matched case-insensitively anywhere in the description, in
time linear in the description; what needs backtracking, or too much memory, is refused."""

from __future__ import annotations

import time

import pytest

from apps.ai.routing_patterns import (
    MAX_DESCRIPTION_LENGTH,
    MAX_PATTERN_LENGTH,
    PatternNotSupported,
    compile_study_description_pattern,
)


def matches(pattern: str, description: str) -> bool:
    return compile_study_description_pattern(pattern).matches(description)


def test_a_pattern_matches_anywhere_in_the_description_ignoring_case():
    assert matches("chest", "CT CHEST W/O CONTRAST")
    assert not matches("^chest", "CT CHEST W/O CONTRAST")


def test_python_end_of_text_anchor_keeps_matching_as_it_did():
    assert matches(r"contrast\Z", "CT CHEST W/O CONTRAST")
    assert not matches(r"chest\Z", "CT CHEST W/O CONTRAST")
    assert matches(r"a\\Z", "A\\Z")  # an escaped backslash followed by Z is literal text


def test_nested_quantifiers_match_in_linear_time():
    started = time.perf_counter()
    assert not matches("^(a+)+$", "a" * 29 + "!")
    assert not matches("^(a|aa)+$", "a" * 1000 + "!")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"(CT)\1", r"invalid escape sequence: \1"),
    ("CT(?= CHEST)", "invalid perl operator: (?="),
    ("(?<!PET )CT", "invalid perl operator: (?<!"),
    ("CT [", "missing ]: ["),
    (r"\pL{1000}", "pattern too large - compile failed"),
])
def test_a_pattern_re2_cannot_run_in_linear_time_or_memory_is_refused_with_the_reason(pattern, reason):
    with pytest.raises(PatternNotSupported) as refused:
        compile_study_description_pattern(pattern)
    assert str(refused.value).startswith(reason)


def test_a_pattern_longer_than_the_cap_is_refused():
    with pytest.raises(PatternNotSupported, match=f"at most {MAX_PATTERN_LENGTH} are allowed"):
        compile_study_description_pattern("x" * (MAX_PATTERN_LENGTH + 1))


def test_only_the_first_characters_of_an_overlong_description_are_searched():
    assert not matches("MARKER", "x" * MAX_DESCRIPTION_LENGTH + "MARKER")
