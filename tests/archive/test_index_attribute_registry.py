"""The index-attribute registry (apps.dicom.index_attributes) is the one description of what the
index keeps: the models, the extraction, the bulk loader and the batch insert SQL agree with it, and
QIDO-RS (PS3.18 §10.6.1.2) matches every attribute it marks matchable (docs/architecture.md,
"The index-attribute registry")."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import date, time
from typing import Any

import pytest
from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.archive.models import Instance, Patient, Series, Study
from apps.archive.services.bulk import index_attributes_of_mapping
from apps.archive.services.indexing import PatientIdentity, batch_insert_sql
from apps.dicom.headers import IndexAttributes, datetime_key
from apps.dicom.index_attributes import (
    INDEXED_ATTRIBUTES,
    INSTANCE_VALUES,
    PATIENT_RECORD,
    ColumnKind,
    IndexedAttribute,
    Level,
    MatchKind,
    UpdatePolicy,
    attributes_of,
)
from apps.dicom.matching import parse_query
from tests.support.dicomweb import attribute, ct_study, qido, stow

MODEL_OF_LEVEL = {Level.STUDY: Study, Level.SERIES: Series, Level.INSTANCE: Instance}

# The columns of each model that are the archive's bookkeeping, not DICOM attributes.
BOOKKEEPING = {
    Patient: {"id", "created_at", "updated_at"},
    Study: {"id", "patient_record_id", "size_bytes", "created_at", "last_instance_at", "stable_at",
            "identity_conflict_at", "deleted_at", "purge_after"},
    Series: {"id", "study_id", "size_bytes", "created_at", "deleted_at", "purge_after"},
    Instance: {"id", "series_id", "study_id", "size_bytes", "sha256", "object_key", "metadata_json", "created_at",
               "deleted_at"},
}
# Of those, the ones the batch insert writes.
INSERTED_BOOKKEEPING = {
    Patient: {"created_at", "updated_at"},
    Study: {"patient_record_id", "size_bytes", "created_at", "last_instance_at"},
    Series: {"study_id", "size_bytes", "created_at"},
    Instance: {"series_id", "study_id", "size_bytes", "sha256", "object_key", "metadata_json", "created_at"},
}


def registry_columns(attributes: tuple[IndexedAttribute, ...], *, matching_copies: bool = True) -> set[str]:
    columns = {item.column for item in attributes}
    if matching_copies:
        columns |= {item.search_column for item in attributes if item.search_column}
        columns |= {item.keys_column for item in attributes if item.keys_column}
    return columns


def model_columns(model: type[models.Model]) -> dict[str, models.Field]:
    return {field.column: field for field in model._meta.concrete_fields}


def inserted_columns(table: str) -> set[str]:
    [match] = re.findall(rf'INSERT INTO "{table}"\s*\(([^)]*)\)', batch_insert_sql())
    return {name.strip().strip('"') for name in match.split(",")}


@pytest.mark.parametrize("level", list(Level))
def test_each_level_model_has_one_column_per_registry_attribute_of_its_type_and_length(level):
    model = MODEL_OF_LEVEL[level]
    columns = model_columns(model)
    assert set(columns) - BOOKKEEPING[model] == registry_columns(attributes_of(level))
    for item in attributes_of(level):
        field = columns[item.column]
        if item.kind in (ColumnKind.TEXT, ColumnKind.UID, ColumnKind.PERSON_NAME, ColumnKind.DATETIME):
            assert (type(field), field.max_length) == (models.CharField, item.max_length), item.keyword
        elif item.kind == ColumnKind.CODE_ARRAY:
            assert isinstance(field, ArrayField) and field.base_field.max_length == item.max_length, item.keyword
        else:
            expected = {ColumnKind.DATE: models.DateField, ColumnKind.TIME: models.TimeField,
                        ColumnKind.INTEGER: models.IntegerField}[item.kind]
            assert type(field) is expected, item.keyword
        if item.search_column:
            assert columns[item.search_column].max_length == item.max_length
        if item.keys_column:
            assert isinstance(columns[item.keys_column], ArrayField)


def test_the_patient_model_has_the_registry_patient_record_attributes():
    assert set(model_columns(Patient)) - BOOKKEEPING[Patient] == registry_columns(PATIENT_RECORD,
                                                                                 matching_copies=False)


def test_what_an_instance_carries_into_the_index_is_the_registry_minus_computed_values():
    assert {field.name for field in dataclasses.fields(IndexAttributes)} == {item.column for item in INSTANCE_VALUES}


@pytest.mark.parametrize("model", [Patient, Study, Series, Instance])
def test_the_batch_insert_writes_every_registry_column_of_its_table(model):
    if model is Patient:
        expected = registry_columns(PATIENT_RECORD, matching_copies=False)
    else:
        expected = registry_columns(attributes_of({Study: Level.STUDY, Series: Level.SERIES}.get(model,
                                                                                                 Level.INSTANCE)))
    assert inserted_columns(model._meta.db_table) == expected | INSERTED_BOOKKEEPING[model]


def test_a_later_instance_fills_exactly_the_fill_empty_attributes_of_its_study_and_series():
    updated = set(re.findall(r'"(\w+)" = CASE WHEN "archive_\w+"\."\w+" = \'\'', batch_insert_sql()))
    fill_empty = {item.column for item in INDEXED_ATTRIBUTES if item.policy == UpdatePolicy.FILL_EMPTY}
    assert updated == fill_empty == {"accession_number", "study_description", "series_description"}


def test_the_conflict_flagged_attributes_are_the_patient_identity_a_study_keeps():
    """A later instance contradicting them is refused and flagged (docs/dicomweb.md, "Patient identity")."""
    flagged = {item.column for item in INDEXED_ATTRIBUTES if item.policy == UpdatePolicy.CONFLICT_FLAGGED}
    assert flagged == {field.name for field in dataclasses.fields(PatientIdentity)}


def _bulk_value(item: IndexedAttribute) -> tuple[Any, Any]:
    """A value sent to the bulk loader for `item`, and the value the index must keep of it."""
    if item.kind == ColumnKind.DATE:
        return "20240131", date(2024, 1, 31)
    if item.kind == ColumnKind.TIME:
        return "101500", time(10, 15)
    if item.kind == ColumnKind.DATETIME:
        return "20240131101500", datetime_key("20240131101500")
    if item.kind == ColumnKind.INTEGER:
        return 7, 7
    text = "1." + "2" * (item.max_length + 4)  # longer than the column: truncated to it
    return text, text[: item.max_length]


def test_the_bulk_loader_reads_every_value_an_instance_carries_from_its_keyword():
    sent = {item.source_keyword: _bulk_value(item)[0] for item in INSTANCE_VALUES}
    kept = index_attributes_of_mapping(sent)
    for item in INSTANCE_VALUES:
        assert getattr(kept, item.column) == _bulk_value(item)[1], item.keyword


# --- QIDO-RS ------------------------------------------------------------------------------------------

PATH_OF_LEVEL = {Level.STUDY: "/studies", Level.SERIES: "/series", Level.INSTANCE: "/instances"}


def _query_value(item: IndexedAttribute, kind: MatchKind) -> str:
    if kind == MatchKind.RANGE:
        return {ColumnKind.DATE: "20200101-20201231", ColumnKind.TIME: "080000-090000"}.get(
            item.kind, "20200101080000-20201231090000")
    if kind == MatchKind.WILDCARD:
        return "ZQ*"
    if kind == MatchKind.FUZZY:
        return "Zqnobody^Zq"
    if item.kind == ColumnKind.INTEGER:
        return "1,2" if kind == MatchKind.LIST else "1"
    if item.kind == ColumnKind.UID:
        return "1.2.3.4,1.2.3.5" if kind == MatchKind.LIST else "1.2.3.4"
    return "ZQA,ZQB" if kind == MatchKind.LIST else "ZQA"


def _queries() -> list[tuple[IndexedAttribute, MatchKind, dict[str, str]]]:
    """Each (matchable attribute, match kind it allows) as a query that parses to that kind; list
    matching of free-text VRs cannot be asked for (PS3.4 §C.2.2.2.2 allows it for UI and CS only)."""
    queries = []
    for item in INDEXED_ATTRIBUTES:
        for kind in sorted(item.matching):
            params = {item.keyword: _query_value(item, kind)}
            if kind == MatchKind.FUZZY:
                params["fuzzymatching"] = "true"
            [criterion] = parse_query(list(params.items()), max_limit=10).criteria
            if criterion.kind == kind:
                queries.append((item, kind, params))
    return queries


QUERIES = _queries()


def test_every_matchable_attribute_is_queried_with_at_least_one_of_its_match_kinds():
    assert {item.keyword for item, _kind, _params in QUERIES} == {item.keyword for item in INDEXED_ATTRIBUTES
                                                                  if item.qido}


@pytest.mark.parametrize(("item", "kind", "params"), QUERIES, ids=[f"{i.keyword}-{k}" for i, k, _p in QUERIES])
def test_qido_matches_every_registry_matchable_attribute_without_a_warning(platform, item, kind, params):
    response = qido(platform.http("clinic_a", "referring_physician"), PATH_OF_LEVEL[item.level],
                    {**params, "limit": "1"})
    assert response.status_code == 200, response.text
    assert item.keyword not in response.headers.get("Warning", "")


def test_body_part_examined_round_trips_from_stow_to_a_qido_match_and_its_json_answer(platform):
    """PS3.18 §10.5 store, §10.6 search by BodyPartExamined, §10.6.3.3 includefield answer."""
    body_part = "ZQ" + uuid.uuid4().hex[:10].upper()
    study = ct_study(2, body_part_examined=body_part)
    http = platform.http("clinic_a", "technologist")
    assert stow(http, study.files).status_code == 200
    matched = qido(http, "/series", {"BodyPartExamined": body_part, "includefield": "BodyPartExamined"})
    assert matched.status_code == 200 and "Warning" not in matched.headers
    [result] = matched.json()
    assert attribute(result, "0020000E") == study.series_instance_uids[0]
    assert result["00180015"] == {"vr": "CS", "Value": [body_part]}
    wild = qido(http, "/series", {"BodyPartExamined": body_part[:-1] + "?"}).json()
    assert [attribute(item, "0020000E") for item in wild] == study.series_instance_uids
    # not a default return key at series level (PS3.18 Table 10.6.3-4)
    [plain] = qido(http, "/series", {"SeriesInstanceUID": study.series_instance_uids[0]}).json()
    assert "00180015" not in plain
