"""DICOM JSON (PS3.18 Annex F) for QIDO-RS results and STOW-RS responses.

Index rows become result objects through the index-attribute registry (apps.dicom.index_attributes:
VR, value form, default return keys; the row keys from apps.archive.selectors.column_path), so a
result carries exactly the attributes the index can match on (plus those asked for with
`includefield`, taken from the stored metadata at instance level).
"""

from __future__ import annotations

import json
from datetime import date, time
from typing import Any, Final

from apps.archive.metadata import with_service_root
from apps.archive.selectors import SearchPage, column_path
from apps.archive.services import StoreReport
from apps.dicom.index_attributes import (
    BY_KEYWORD,
    DEFAULT_RETURN_KEYWORDS,
    ColumnKind,
    IndexedAttribute,
    Level,
    levels_up_to,
)
from apps.dicom.json_model import dumps
from apps.dicom.matching import QidoQuery

RETRIEVE_URL = "00081190"
INSTANCE_AVAILABILITY = "00080056"


def _time_text(value: time) -> str:
    text = value.strftime("%H%M%S")
    return f"{text}.{value.microsecond:06d}" if value.microsecond else text


def _person_name(value: str) -> dict[str, str]:
    groups = value.split("=")
    names = ("Alphabetic", "Ideographic", "Phonetic")
    return {name: group for name, group in zip(names, groups, strict=False) if group}


def attribute_json(attribute: IndexedAttribute, value: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"vr": attribute.vr}
    if value is None or value == "" or value == []:
        return entry
    if attribute.kind == ColumnKind.DATE and isinstance(value, date):
        entry["Value"] = [value.strftime("%Y%m%d")]
    elif attribute.kind == ColumnKind.TIME and isinstance(value, time):
        entry["Value"] = [_time_text(value)]
    elif attribute.kind == ColumnKind.PERSON_NAME:
        entry["Value"] = [_person_name(str(value))]
    elif attribute.kind == ColumnKind.INTEGER:
        entry["Value"] = [int(value)]
    elif attribute.kind == ColumnKind.CODE_ARRAY:
        entry["Value"] = list(value)
    else:
        entry["Value"] = [str(value)]
    return entry


_STUDY_UID, _SERIES_UID, _SOP_UID = (
    BY_KEYWORD["StudyInstanceUID"], BY_KEYWORD["SeriesInstanceUID"], BY_KEYWORD["SOPInstanceUID"]
)
_UID_PATHS: Final = {level: tuple(column_path(level, uid) for uid in (_STUDY_UID, _SERIES_UID, _SOP_UID)
                                  if uid.level in levels_up_to(level)) for level in Level}


def _retrieve_url(service_root: str, level: Level, row: dict[str, Any]) -> str:
    paths = _UID_PATHS[level]
    url = f"{service_root}/studies/{row[paths[0]]}"
    if len(paths) > 1:
        url += f"/series/{row[paths[1]]}"
    if len(paths) > 2:
        url += f"/instances/{row[paths[2]]}"
    return url


def _returned_attributes(query: QidoQuery, level: Level, scoped_levels: set[Level]) -> list[IndexedAttribute]:
    """Defaults of the level, and of the levels above when the query is not scoped to them, plus the
    matching keys and includefields the index holds (PS3.18 §10.6.3.3)."""
    allowed = levels_up_to(level)
    keywords: list[str] = []
    for attribute_level in allowed:
        if attribute_level == level or attribute_level not in scoped_levels or query.include_all:
            keywords += DEFAULT_RETURN_KEYWORDS[attribute_level]
    # The UIDs of the levels above are always returned, so a result can be placed.
    if level != Level.STUDY:
        keywords.append("StudyInstanceUID")
    if level == Level.INSTANCE:
        keywords.append("SeriesInstanceUID")
    keywords += [criterion.attribute.keyword for criterion in query.criteria]
    keywords += [attribute.keyword for attribute in query.include_fields]
    if query.include_all:
        keywords += [attribute.keyword for attribute in BY_KEYWORD.values() if attribute.level in allowed]
    selected = []
    for keyword in dict.fromkeys(keywords):
        attribute = BY_KEYWORD.get(keyword)
        if attribute is not None and attribute.level in allowed:
            selected.append(attribute)
    return selected


def qido_results(
    page: SearchPage, query: QidoQuery, *, service_root: str, scoped_levels: set[Level]
) -> str:
    """The JSON array of a QIDO-RS answer (PS3.18 §10.6.3.3.1)."""
    level = page.level
    attributes = _returned_attributes(query, level, scoped_levels)
    paths = [column_path(level, attribute) for attribute in attributes]
    wanted_tags = {attribute.tag_hex for attribute in query.include_fields}
    results: list[dict[str, Any]] = []
    for row in page.rows:
        result: dict[str, Any] = {}
        metadata = row.get("metadata_json")
        if metadata and (query.include_all or wanted_tags):
            stored = json.loads(with_service_root(metadata, service_root))
            result.update(stored if query.include_all else {tag: stored[tag] for tag in wanted_tags if tag in stored})
        for attribute, path in zip(attributes, paths, strict=True):
            result[attribute.tag] = attribute_json(attribute, row[path])
        result[INSTANCE_AVAILABILITY] = {"vr": "CS", "Value": ["ONLINE"]}
        result[RETRIEVE_URL] = {"vr": "UR", "Value": [_retrieve_url(service_root, level, row)]}
        results.append(dict(sorted(result.items())))
    return dumps(results)


def stow_response(report: StoreReport, *, service_root: str, study_instance_uid: str | None) -> str:
    """The Store Instances Response (PS3.18 §10.5.3, Table 10.5.3-2) as DICOM JSON."""
    document: dict[str, Any] = {}
    studies = report.study_instance_uids
    retrieve_study = study_instance_uid or (studies[0] if len(studies) == 1 else None)
    if retrieve_study and report.stored:
        document[RETRIEVE_URL] = {"vr": "UR", "Value": [f"{service_root}/studies/{retrieve_study}"]}
    if report.failed:
        document["00081198"] = {"vr": "SQ", "Value": [
            {
                "00081150": _ui(item.sop_class_uid),
                "00081155": _ui(item.sop_instance_uid),
                "00081197": {"vr": "US", "Value": [int(item.reason)]},
            }
            for item in report.failed
        ]}
    if report.stored:
        referenced = []
        for item in report.stored:
            entry: dict[str, Any] = {
                "00081150": _ui(item.sop_class_uid),
                "00081155": _ui(item.sop_instance_uid),
                RETRIEVE_URL: {"vr": "UR", "Value": [
                    f"{service_root}/studies/{item.study_instance_uid}/series/{item.series_instance_uid}"
                    f"/instances/{item.sop_instance_uid}"
                ]},
            }
            if item.warnings:
                entry["00081196"] = {"vr": "US", "Value": [int(item.warnings[0][0])]}
            referenced.append(dict(sorted(entry.items())))
        document["00081199"] = {"vr": "SQ", "Value": referenced}
    warnings = [reason for item in report.stored for reason, _ in item.warnings]
    if warnings:
        document["00081196"] = {"vr": "US", "Value": [int(warnings[0])]}
    return dumps(dict(sorted(document.items())))


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}
