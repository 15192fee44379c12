"""Study-description patterns of routing rules, matched in time linear in the description.

A clinic admin writes these patterns and they are evaluated on the shared ingest queue, so one
tenant's pattern must never be able to stall the workers every tenant shares. Python's ``re``
backtracks (``^(a+)+$`` against 29 characters takes seconds to minutes); RE2 never does: it
refuses the constructs that need backtracking (back-references, look-around, possessive and atomic
groups) and matches everything else in time proportional to the text. Patterns are also capped in
length and in the memory RE2 may use to compile them, and the description is capped before it is
searched.

No Django here: the service validates with ``compile_study_description_pattern`` when a rule is
saved, and routing matches with ``CompiledDescriptionPattern.matches``.
"""

from __future__ import annotations

from dataclasses import dataclass

import re2

# The RoutingRule column's length: a longer pattern is refused when a rule is saved.
MAX_PATTERN_LENGTH = 200
# A StudyDescription is a DICOM LO value (PS3.5 §6.2: at most 64 characters); anything beyond this
# is not a real description and is not searched.
MAX_DESCRIPTION_LENGTH = 1024
# RE2's budget for one compiled pattern; a pattern whose automaton needs more is refused at save
# (e.g. nested counted repetitions), so no rule can make a worker allocate much.
PATTERN_MEMORY_BYTES = 1 << 20


class PatternNotSupported(ValueError):
    """The pattern is too long, malformed, or uses a construct that needs backtracking."""


@dataclass(frozen=True)
class CompiledDescriptionPattern:
    """A routing rule's pattern, compiled once, matched case-insensitively anywhere in the text
    (the way the rules were always evaluated: ``re.search`` with ``re.IGNORECASE``)."""

    source: str
    regexp: re2._Regexp

    def matches(self, study_description: str) -> bool:
        return self.regexp.search(study_description[:MAX_DESCRIPTION_LENGTH]) is not None


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.max_mem = PATTERN_MEMORY_BYTES
    # The refusal reaches the admin as a 400; RE2 need not also print it on the worker's stderr.
    options.log_errors = False
    return options


def _with_python_end_anchor_translated(pattern: str) -> str:
    r"""Python's ``\Z`` (end of text) is RE2's ``\z``; rules written for ``re`` keep matching."""
    translated: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            translated.append("\\z" if escaped == "Z" else character + escaped)
            index += 2
            continue
        translated.append(character)
        index += 1
    return "".join(translated)


def _reason(error: re2.error) -> str:
    message = error.args[0] if error.args else ""
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def compile_study_description_pattern(pattern: str) -> CompiledDescriptionPattern:
    """Compile a pattern for matching, or raise PatternNotSupported with a message for the admin."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternNotSupported(f"the pattern is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are allowed")
    try:
        regexp = re2.compile(_with_python_end_anchor_translated(pattern), _options())
    except re2.error as error:
        raise PatternNotSupported(
            f"{_reason(error)} (patterns use RE2 syntax, matched in linear time: back-references, "
            "look-ahead and look-behind are not supported)"
        ) from error
    return CompiledDescriptionPattern(source=pattern, regexp=regexp)


def pattern_refusal(pattern: str) -> str | None:
    """Why a stored pattern cannot be matched (a rule saved before patterns were checked), or None."""
    if not pattern:
        return None
    try:
        compile_study_description_pattern(pattern)
    except PatternNotSupported as error:
        return str(error)
    return None
