"""A data set as the DICOM JSON Model (PS3.18 Annex F), with bulk values as BulkDataURIs (no Django imports).

PS3.18 §F.2: an object keyed by the 8-digit upper-case hex tag, each attribute an object with its
"vr" and, when it has a value, "Value" (an array), "BulkDataURI" or "InlineBinary":

- text VRs → strings (an empty value inside a multi-valued attribute → null, §F.2.5);
- PN → objects with Alphabetic / Ideographic / Phonetic component groups (§F.2.2);
- IS, DS and the binary numbers → numbers (§F.2.3); AT → "GGGGEEEE" strings;
- SQ → an array of nested objects;
- OB, OD, OF, OL, OV, OW, UN → "InlineBinary" (base64) when short, else "BulkDataURI" (§F.2.6/§F.2.7).

Values at least `bulk_data_threshold` long are never read: the parser left them deferred
(`keep_deferred=True`), and only a URI naming their tag path is written. The archive renders this
once per instance at ingest and stores the text, so a metadata request is a string join.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from apps.dicom.headers import BULK_DATA_THRESHOLD

BulkDataUri = Callable[[str], str]

BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_INTEGER_STRING_VRS: Final = frozenset({"IS"})
_DECIMAL_STRING_VRS: Final = frozenset({"DS"})
_NUMBER_VRS: Final = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})
# JavaScript numbers are exact up to 2^53; larger 64-bit integers travel as strings (PS3.18 §F.2.3.1).
_SAFE_INTEGER: Final = 2**53


def _vr_of(element: DataElement | RawDataElement) -> str:
    vr = element.VR
    if vr is None:  # implicit VR: take it from the dictionary; unknown private tags are UN
        try:
            vr = dictionary_VR(element.tag)
        except KeyError:
            return "UN"
    return vr.split(" or ")[0] if " or " in vr else vr


def _ambiguous(raw: RawDataElement) -> bool:
    """Implicit VR elements whose VR depends on other attributes ("US or SS"): pydicom resolves them."""
    if raw.VR is not None:
        return " or " in raw.VR
    try:
        return " or " in dictionary_VR(raw.tag)
    except KeyError:
        return False


def _number(value: Any) -> int | float | str | None:
    if isinstance(value, int):
        return value if abs(value) < _SAFE_INTEGER else str(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    if number.is_integer() and abs(number) < _SAFE_INTEGER:
        return int(number)
    return number


def _values(value: Any) -> list[Any]:
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _person_name(value: PersonName | str) -> dict[str, str] | None:
    if not isinstance(value, PersonName):
        value = PersonName(str(value))
    groups = value.components
    names = ("Alphabetic", "Ideographic", "Phonetic")
    result = {name: group for name, group in zip(names, groups, strict=False) if group}
    return result or None


def _string(value: Any) -> str | None:
    text = str(value)
    return text if text != "" else None


def _element_json(
    element: DataElement, vr: str, path: str, bulk_data_uri: BulkDataUri | None, threshold: int,
    codec: str | None = None,
) -> dict[str, Any]:
    value = element.value
    entry: dict[str, Any] = {"vr": vr}
    if value is None or (isinstance(value, str | bytes) and len(value) == 0):
        return entry
    if vr == "SQ":
        items = [
            _document(item, bulk_data_uri, threshold, f"{path}/{index}/",
                      _charset_codec(item) if 0x00080005 in item else codec)  # an item may name its own
            for index, item in enumerate(value)
        ]
        if items:
            entry["Value"] = items
        return entry
    if vr in BINARY_VRS:
        data = value if isinstance(value, bytes | bytearray) else bytes(value)
        if len(data) >= threshold and bulk_data_uri is not None:
            entry["BulkDataURI"] = bulk_data_uri(path)
        else:
            entry["InlineBinary"] = base64.b64encode(data).decode("ascii")
        return entry
    values = _values(value)
    if not values:
        return entry
    if vr == "PN":
        converted: list[Any] = [_person_name(item) if item not in ("", None) else None for item in values]
    elif vr in _INTEGER_STRING_VRS or vr in _DECIMAL_STRING_VRS or vr in _NUMBER_VRS:
        converted = [_number(item) if item not in ("", None) else None for item in values]
    elif vr == "AT":
        converted = [f"{int(item):08X}" for item in values]
    else:
        converted = [_string(item) for item in values]
    if all(item is None for item in converted):
        return entry
    entry["Value"] = converted
    return entry


# Text VRs whose characters come from the Specific Character Set (PS3.5 §6.1.2.3); the others are
# always in the default repertoire.
_CHARSET_VRS: Final = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
# Text VRs holding one value (backslash is an ordinary character) with insignificant trailing spaces.
_SINGLE_TEXT_VRS: Final = frozenset({"ST", "LT", "UT", "UR"})
_SPLIT_TEXT_VRS: Final = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC", "UI"})
_BINARY_NUMBER_FORMATS: Final = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}


class _SlowPath(Exception):
    """The raw value needs pydicom's own conversion (unusual charset, malformed number, ...)."""


def _charset_codec(dataset: Dataset) -> str | None:
    """The Python codec for the data set's text when it is one single-byte or UTF-8 character set,
    None when code extensions (ISO 2022) are in use and pydicom must decode."""
    raw = dataset.get_item(0x00080005, keep_deferred=True) if 0x00080005 in dataset else None
    if raw is None:
        return "latin_1"
    value = raw.value
    if isinstance(raw, RawDataElement):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")
        terms = [term.strip() for term in text.split("\\")]
    else:
        terms = [str(term).strip() for term in _values(value)] if value else []
    terms = [term for term in terms if term] or [""]
    if len(terms) > 1 or terms[0].startswith("ISO 2022"):
        return None
    if terms[0] in ("", "ISO_IR 6"):
        return "latin_1"
    return python_encoding.get(terms[0])


def _fast_value(raw: RawDataElement, vr: str, codec: str | None) -> list[Any] | None:
    """Convert a raw value without building pydicom objects; raises _SlowPath when it cannot."""
    data = raw.value
    if not isinstance(data, bytes):
        raise _SlowPath
    if vr in _BINARY_NUMBER_FORMATS:
        size = struct.calcsize(_BINARY_NUMBER_FORMATS[vr])
        if len(data) % size:
            raise _SlowPath
        order = "<" if raw.is_little_endian else ">"
        numbers = struct.unpack(f"{order}{len(data) // size}{_BINARY_NUMBER_FORMATS[vr]}", data)
        return [_number(number) for number in numbers]
    if vr == "AT":
        if len(data) % 4:
            raise _SlowPath
        order = "<" if raw.is_little_endian else ">"
        pairs = struct.unpack(f"{order}{len(data) // 2}H", data)
        return [f"{pairs[index]:04X}{pairs[index + 1]:04X}" for index in range(0, len(pairs), 2)]
    if vr in _CHARSET_VRS:
        if codec is None:
            raise _SlowPath
        text = data.decode(codec)
    else:
        text = data.decode("latin_1")
    if vr in _SINGLE_TEXT_VRS:
        text = text.rstrip(" \x00")
        return [text] if text else None
    items = text.rstrip("\x00").split("\\")
    if vr == "PN":
        names = []
        for item in items:
            groups = item.rstrip(" ").split("=")
            name = {key: group for key, group in zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False) if group}
            names.append(name or None)
        return names if any(names) else None
    stripped = [item.strip(" \x00") for item in items]
    if vr == "DS" or vr == "IS":
        try:
            converted: list[Any] = [
                None if not item else (int(item) if vr == "IS" else _number(float(item))) for item in stripped
            ]
        except ValueError as error:
            raise _SlowPath from error
        return converted if any(item is not None for item in converted) else None
    if vr in _SPLIT_TEXT_VRS:
        values = [item if item else None for item in stripped]
        return values if any(item is not None for item in values) else None
    raise _SlowPath


def dataset_to_json(
    dataset: Dataset,
    *,
    bulk_data_uri: BulkDataUri | None = None,
    bulk_data_threshold: int = BULK_DATA_THRESHOLD,
    path_prefix: str = "",
) -> dict[str, Any]:
    """The DICOM JSON Model object of `dataset` (File Meta Information and group lengths left out).

    `bulk_data_uri(tag_path)` makes the URI for a bulk value; the tag path is the tag as 8 hex digits,
    nested as ``SEQUENCETAG/itemindex/TAG`` (item indexes from 0). Without it, binary values are
    always inline. Raw values are converted directly (the ingest hot path); anything unusual goes
    through pydicom's own conversion.
    """
    return _document(dataset, bulk_data_uri, bulk_data_threshold, path_prefix, _charset_codec(dataset))


def _document(
    dataset: Dataset, bulk_data_uri: BulkDataUri | None, bulk_data_threshold: int, path_prefix: str, codec: str | None
) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for tag in sorted(dataset.keys()):
        if tag.element == 0 or tag.group in (0x0000, 0x0002):
            continue
        key = f"{tag:08X}"
        path = path_prefix + key
        raw = dataset.get_item(tag, keep_deferred=True)
        vr = _vr_of(raw)
        if isinstance(raw, RawDataElement):
            if vr in BINARY_VRS:
                if raw.value is None and raw.length:
                    # Deferred by the parser: never read, only referenced (or skipped without a URI maker).
                    if bulk_data_uri is not None:
                        document[key] = {"vr": vr, "BulkDataURI": bulk_data_uri(path)}
                        continue
                elif bulk_data_uri is not None and raw.length >= bulk_data_threshold and raw.length != 0xFFFFFFFF:
                    document[key] = {"vr": vr, "BulkDataURI": bulk_data_uri(path)}
                    continue
                elif isinstance(raw.value, bytes):
                    document[key] = (
                        {"vr": vr, "InlineBinary": base64.b64encode(raw.value).decode("ascii")} if raw.value else {"vr": vr}
                    )
                    continue
            elif vr != "SQ" and raw.value is not None and not _ambiguous(raw):
                try:
                    values = _fast_value(raw, vr, codec)
                except (_SlowPath, UnicodeDecodeError, struct.error):
                    pass
                else:
                    document[key] = {"vr": vr, "Value": values} if values else {"vr": vr}
                    continue
        try:
            element = dataset[tag]
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, OverflowError):
            document[key] = {"vr": vr}  # a value pydicom cannot convert is left out rather than fail the instance
            continue
        try:
            document[key] = _element_json(element, _vr_of(element), path, bulk_data_uri, bulk_data_threshold, codec)
        except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
            document[key] = {"vr": vr}
    return document


def pixel_data_entry(vr: str, uri: str) -> dict[str, Any]:
    """The metadata entry for pixel data the header parser stopped before (always a BulkDataURI)."""
    return {"vr": vr if vr in BINARY_VRS else "OB", "BulkDataURI": uri}


def dumps(document: Any) -> str:
    """Compact JSON text; control characters are always escaped, so text never holds a raw one."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@lru_cache(maxsize=512)
def _tag_and_vr(keyword: str) -> tuple[str, str] | None:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    vr = dictionary_VR(tag)
    return f"{tag:08X}", vr.split(" or ")[0]


def attributes_to_json(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The DICOM JSON object of a flat keyword → value mapping (values as DICOM strings or numbers).

    For index rows made without an object behind them (bulk loads): unknown keywords are skipped,
    empty values give an attribute without a Value.
    """
    entries: list[tuple[str, dict[str, Any]]] = []
    for keyword, value in attributes.items():
        known = _tag_and_vr(keyword)
        if known is None:
            continue
        tag, vr = known
        entry: dict[str, Any] = {"vr": vr}
        if value not in (None, ""):
            if vr == "PN":
                entry["Value"] = [{"Alphabetic": str(value)}]
            elif vr in _INTEGER_STRING_VRS or vr in _DECIMAL_STRING_VRS or vr in _NUMBER_VRS:
                entry["Value"] = [_number(value)]
            else:
                entry["Value"] = [str(value)]
        entries.append((tag, entry))
    return dict(sorted(entries))
