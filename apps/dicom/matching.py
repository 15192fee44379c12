"""QIDO-RS query parameters as a structured query (no Django imports).

PS3.18 §8.3.4 names the parameters — ``{attributeID}={value}``, ``includefield``, ``fuzzymatching``,
``limit``, ``offset`` — and PS3.4 §C.2.2.2 the matching each value asks for:

- single value matching (§C.2.2.2.1), case-insensitive for person names (as PS3.18 §8.3.4.6 lets a
  server do, and as users expect);
- list of UID matching (§C.2.2.2.2) for UI values separated by commas or backslashes, and value lists
  for code strings;
- universal matching (§C.2.2.2.3): an empty value matches everything and asks for the attribute;
- wild card matching (§C.2.2.2.4): ``*`` any run of characters, ``?`` one character;
- range matching (§C.2.2.2.5) of DA, TM and DT: ``from-to``, ``-to``, ``from-``;
- fuzzy semantic matching of person names (``fuzzymatching=true``, §C.2.2.2.1.1): each name part is
  compared by its phonetic key, in any order, ignoring case and accents.

Person names are compared in a normalised form (`normalise_person_name`); the archive stores names in
that form too, so matching is a plain comparison on an indexed column.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from apps.dicom.headers import parse_date, parse_time

# MatchKind is defined with the registry (whose QIDO-RS matching it names) and re-exported here.
from apps.dicom.index_attributes import MatchKind as MatchKind
from apps.dicom.uids import split_uid_list, uid_problem

LIMIT: Final = "limit"
OFFSET: Final = "offset"
FUZZY_MATCHING: Final = "fuzzymatching"
INCLUDE_FIELD: Final = "includefield"
RESERVED_PARAMETERS: Final = frozenset({LIMIT, OFFSET, FUZZY_MATCHING, INCLUDE_FIELD})
# Parameters PS3.18 defines for other purposes, or that common clients send; accepted and ignored.
IGNORED_PARAMETERS: Final = frozenset({"charset", "accept", "emptyvaluematching", "multiplevaluematching", "_"})

_WILDCARD_CHARACTERS: Final = frozenset("*?")
_RANGE_VRS: Final = frozenset({"DA", "TM", "DT"})
_INTEGER_VRS: Final = frozenset({"IS", "US", "SS", "UL", "SL", "UV", "SV"})
_LIST_VRS: Final = frozenset({"UI", "CS"})
_NUL: Final = "\x00"


class QueryError(ValueError):
    """A query parameter that cannot be understood; the answer is 400 with this message."""


@dataclass(frozen=True, slots=True)
class Attribute:
    keyword: str
    tag: int
    vr: str

    @property
    def tag_hex(self) -> str:
        return f"{self.tag:08X}"


@dataclass(frozen=True, slots=True)
class Criterion:
    """One matching key. `values` holds the value(s) as sent for SINGLE/LIST/WILDCARD/FUZZY; RANGE
    bounds are inclusive and None when open (dates, times or datetimes by the attribute's VR)."""

    attribute: Attribute
    kind: MatchKind
    values: tuple[str, ...] = ()
    lower: date | time | datetime | None = None
    upper: date | time | datetime | None = None


@dataclass(frozen=True)
class QidoQuery:
    criteria: tuple[Criterion, ...] = ()
    include_all: bool = False
    include_fields: tuple[Attribute, ...] = ()
    fuzzy_matching: bool = False
    limit: int | None = None
    offset: int = 0
    unsupported: tuple[str, ...] = field(default=())

    def criterion(self, keyword: str) -> Criterion | None:
        return next((item for item in self.criteria if item.attribute.keyword == keyword), None)


# --- attributes ----------------------------------------------------------------------------------------


def resolve_attribute(name: str) -> Attribute:
    """An attribute named by keyword (``PatientName``) or tag (``00100010``), PS3.18 §8.3.4.1."""
    text = name.strip()
    tag: int | None = None
    if re.fullmatch(r"[0-9A-Fa-f]{8}", text):
        tag = int(text, 16)
    else:
        tag = tag_for_keyword(text)
    if tag is None:
        raise QueryError(f"{name!r} is neither a DICOM keyword nor a tag")
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise QueryError(f"attribute {tag:08X} is not in the DICOM dictionary") from None
    keyword = keyword_for_tag(tag) or f"{tag:08X}"
    return Attribute(keyword=keyword, tag=tag, vr=vr.split(" or ")[0])


# --- person names --------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Upper case without accents (é → E), so comparisons ignore both."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(character for character in decomposed if not unicodedata.combining(character)).upper()


def normalise_person_name(value: str) -> str:
    """The form person names are stored and compared in: the alphabetic group (PS3.5 §6.2.1.1) with
    trailing empty components removed, blanks around components trimmed, upper case, no accents."""
    group = value.split("=", 1)[0]
    components = [component.strip() for component in group.split("^")]
    while components and not components[-1]:
        components.pop()
    return _fold("^".join(components))


_SOUNDEX_CODES: Final = {
    **dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"), **dict.fromkeys("DT", "3"),
    "L": "4", **dict.fromkeys("MN", "5"), "R": "6",
}


def soundex(word: str) -> str:
    """American Soundex of an upper-case A-Z word (letter + three digits)."""
    first = word[0]
    digits: list[str] = []
    previous = _SOUNDEX_CODES.get(first, "")
    for letter in word[1:]:
        code = _SOUNDEX_CODES.get(letter, "")
        if code and code != previous:
            digits.append(code)
            if len(digits) == 3:
                break
        if letter not in "HW":  # H and W do not separate letters with the same code
            previous = code
    return (first + "".join(digits) + "000")[:4]


def _name_words(value: str) -> list[str]:
    return [word for word in re.split(r"[\^=\s,.\-']+", _fold(value)) if word]


def _phonetic_key(word: str) -> str:
    letters = re.sub(r"[^A-Z]", "", word)
    return soundex(letters) if letters and letters == word else word


def person_name_keys(value: str) -> list[str]:
    """Phonetic keys of every word of a name (all component groups), for fuzzy matching."""
    return sorted({_phonetic_key(word) for word in _name_words(value)})


def fuzzy_query_keys(value: str) -> list[str]:
    return sorted({_phonetic_key(word) for word in _name_words(value)})


# --- values --------------------------------------------------------------------------------------------


def has_wildcard(value: str) -> bool:
    return any(character in _WILDCARD_CHARACTERS for character in value)


def wildcard_to_like(pattern: str) -> str:
    """A SQL LIKE pattern (escape character backslash) for a DICOM wild card pattern."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _strict_date(text: str, attribute: Attribute) -> date:
    if not re.fullmatch(r"\d{8}", text):
        raise QueryError(f"{attribute.keyword}: {text!r} is not a date YYYYMMDD")
    value = parse_date(text)
    if value is None:
        raise QueryError(f"{attribute.keyword}: {text!r} is not a valid date")
    return value


def _time_bounds(text: str, attribute: Attribute) -> tuple[time, time]:
    """The first and last instant a (possibly partial) TM value covers: ``10`` → 10:00:00-10:59:59.999999."""
    value = parse_time(text)
    if value is None or not re.fullmatch(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?", text.replace(":", "")):
        raise QueryError(f"{attribute.keyword}: {text!r} is not a time HHMMSS[.FFFFFF]")
    digits = text.replace(":", "").partition(".")
    whole, fraction = digits[0], digits[2]
    if len(whole) == 2:
        return value, value.replace(minute=59, second=59, microsecond=999999)
    if len(whole) == 4:
        return value, value.replace(second=59, microsecond=999999)
    if not fraction:
        return value, value.replace(microsecond=999999)
    step = 10 ** (6 - len(fraction))
    return value, value.replace(microsecond=min(value.microsecond + step - 1, 999999))


def _datetime_bound(text: str, attribute: Attribute, *, upper: bool) -> datetime:
    match = re.fullmatch(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?", text)
    if not match:
        raise QueryError(f"{attribute.keyword}: {text!r} is not a datetime YYYYMMDD[HHMMSS]")
    year, month, day, hour, minute, second, fraction, _offset = match.groups()
    try:
        start = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                         int(second or 0), int((fraction or "0").ljust(6, "0")))
    except ValueError:
        raise QueryError(f"{attribute.keyword}: {text!r} is not a valid datetime") from None
    if not upper:
        return start
    # The last instant the partial value covers.
    if month is None:
        return datetime(start.year, 12, 31, 23, 59, 59, 999999)
    if day is None:
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(microseconds=1)
    if hour is None:
        return start.replace(hour=23, minute=59, second=59, microsecond=999999)
    if minute is None:
        return start.replace(minute=59, second=59, microsecond=999999)
    if second is None:
        return start.replace(second=59, microsecond=999999)
    if fraction is None:
        return start.replace(microsecond=999999)
    return start


def _range_criterion(attribute: Attribute, value: str) -> Criterion:
    """Single value or range matching of a DA, TM or DT attribute (PS3.4 §C.2.2.2.5)."""
    if "-" in value and not (attribute.vr == "DT" and re.fullmatch(r"[^-]+[+-]\d{4}", value)):
        start_text, _, end_text = value.partition("-")
        if "-" in end_text:
            raise QueryError(f"{attribute.keyword}: {value!r} is not a range 'from-to'")
        if not start_text and not end_text:
            raise QueryError(f"{attribute.keyword}: a range needs at least one bound")
    else:
        start_text = end_text = value
    lower: date | time | datetime | None = None
    upper: date | time | datetime | None = None
    if attribute.vr == "DA":
        lower = _strict_date(start_text, attribute) if start_text else None
        upper = _strict_date(end_text, attribute) if end_text else None
    elif attribute.vr == "TM":
        lower = _time_bounds(start_text, attribute)[0] if start_text else None
        upper = _time_bounds(end_text, attribute)[1] if end_text else None
    else:
        lower = _datetime_bound(start_text, attribute, upper=False) if start_text else None
        upper = _datetime_bound(end_text, attribute, upper=True) if end_text else None
    if lower is not None and upper is not None and lower > upper:  # type: ignore[operator]
        raise QueryError(f"{attribute.keyword}: the range {value!r} ends before it starts")
    return Criterion(attribute, MatchKind.RANGE, (value,), lower, upper)


def criterion_for(attribute: Attribute, values: list[str], *, fuzzy: bool) -> Criterion:
    """The matching one query key asks for, from the value(s) sent for it."""
    if len(values) > 1:
        if attribute.vr in _LIST_VRS:
            items = [item for value in values for item in split_uid_list(value)]
            return _list_criterion(attribute, items)
        raise QueryError(f"{attribute.keyword} is given more than once")
    value = values[0].strip()
    if value in ("", "*"):
        return Criterion(attribute, MatchKind.UNIVERSAL)
    if attribute.vr in _RANGE_VRS:
        return _range_criterion(attribute, value)
    if attribute.vr == "UI":
        return _list_criterion(attribute, split_uid_list(value))
    if attribute.vr in _INTEGER_VRS:
        items = [item.strip() for item in re.split(r"[,\\]", value) if item.strip()]
        if not all(re.fullmatch(r"[+-]?\d+", item) for item in items):
            raise QueryError(f"{attribute.keyword}: {value!r} is not an integer")
        if len(items) == 1:
            return Criterion(attribute, MatchKind.SINGLE, (str(int(items[0])),))
        return Criterion(attribute, MatchKind.LIST, tuple(str(int(item)) for item in items))
    if has_wildcard(value):
        return Criterion(attribute, MatchKind.WILDCARD, (value,))
    if attribute.vr == "PN" and fuzzy:
        return Criterion(attribute, MatchKind.FUZZY, (value,))
    if attribute.vr == "CS" and re.search(r"[,\\]", value):
        return _list_criterion(attribute, [item.strip() for item in re.split(r"[,\\]", value) if item.strip()])
    return Criterion(attribute, MatchKind.SINGLE, (value,))


def _list_criterion(attribute: Attribute, items: list[str]) -> Criterion:
    if attribute.vr == "UI":
        for item in items:
            problem = uid_problem(item)
            if problem:
                raise QueryError(f"{attribute.keyword}: {item[:80]!r}: {problem}")
    if not items:
        return Criterion(attribute, MatchKind.UNIVERSAL)
    if len(items) == 1:
        return Criterion(attribute, MatchKind.SINGLE, (items[0],))
    return Criterion(attribute, MatchKind.LIST, tuple(dict.fromkeys(items)))


def _non_negative_integer(name: str, value: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value.strip()):
        raise QueryError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def parse_query(parameters: Iterable[tuple[str, str]], *, max_limit: int) -> QidoQuery:
    """Parse QIDO-RS query parameters (in the order sent; keys may repeat).

    Attribute paths into sequences (``00400275.00321060``) are not matched here: they are reported
    in `unsupported` so the answer can say so in a Warning header. Raises QueryError for anything
    that cannot be understood (unknown names, malformed dates, UIDs or numbers).
    """
    grouped: dict[str, list[str]] = {}
    include_all = False
    include_fields: list[Attribute] = []
    fuzzy = False
    limit: int | None = None
    offset = 0
    unsupported: list[str] = []
    for name, value in parameters:
        if _NUL in name or _NUL in value:
            # No DICOM text value holds NUL (PS3.5 §6.2: only UIDs are NUL-padded, and the padding
            # is not part of the value), and PostgreSQL cannot compare a text with one: refuse it here.
            raise QueryError(f"{name.replace(_NUL, '?')[:80]}: a query value may not contain a NUL character")
        lowered = name.strip().lower()
        if lowered == LIMIT:
            limit = _non_negative_integer(LIMIT, value)
        elif lowered == OFFSET:
            offset = _non_negative_integer(OFFSET, value)
        elif lowered == FUZZY_MATCHING:
            if value.strip().lower() not in ("true", "false"):
                raise QueryError(f"fuzzymatching must be true or false, not {value!r}")
            fuzzy = value.strip().lower() == "true"
        elif lowered == INCLUDE_FIELD:
            for item in (part.strip() for part in value.split(",")):
                if not item:
                    continue
                if item.lower() == "all":
                    include_all = True
                elif "." in item:
                    unsupported.append(f"includefield={item}")
                else:
                    include_fields.append(resolve_attribute(item))
        elif lowered in IGNORED_PARAMETERS:
            continue
        elif "." in name:
            for part in name.split("."):
                resolve_attribute(part)  # still refuse names that are not attributes at all
            unsupported.append(name)
        else:
            grouped.setdefault(name.strip(), []).append(value)
    criteria: dict[str, Criterion] = {}
    for name, values in grouped.items():
        attribute = resolve_attribute(name)
        if attribute.keyword in criteria:
            raise QueryError(f"{attribute.keyword} is given more than once")
        criteria[attribute.keyword] = criterion_for(attribute, values, fuzzy=fuzzy)
    if limit is not None and limit == 0:
        limit = None
    if limit is not None:
        limit = min(limit, max_limit)
    return QidoQuery(
        criteria=tuple(criteria.values()),
        include_all=include_all,
        include_fields=tuple(dict.fromkeys(include_fields)),
        fuzzy_matching=fuzzy,
        limit=limit,
        offset=offset,
        unsupported=tuple(unsupported),
    )
