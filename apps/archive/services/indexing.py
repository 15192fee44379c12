"""Write a batch of instances into the index in one transaction, with set-based SQL.

One module over 500 lines on purpose: the quota check, the classification and the three statements
are one transaction's steps; the SQL they run is built from the index-attribute registry below.

One call indexes every instance of a STOW-RS request (or a bulk-load chunk) with three statements,
whatever the batch size:

1. lock the tenant's archive meter row;
2. look up what the batch's UIDs already name (live instances with their SHA-256, series with their
   study, studies), to decide duplicates, conflicts and misplaced series — and so the counter deltas;
3. one statement of chained data-modifying CTEs: upsert patients, upsert studies and series with
   their counters and ModalitiesInStudy added in `ON CONFLICT DO UPDATE`, insert the instances
   (`INSERT … SELECT FROM unnest(arrays)`), and add to the meter.

Parameters travel in binary (`_BinaryCursor`), so thousands of metadata texts cost no escaping.

Concurrency: the first statement locks the tenant's single ArchiveUsage row, so index writes of one
tenant (ingest, deletion, purge) run one after another. The decisions taken under that lock —
duplicate or conflicting SOP Instance UID, quota — therefore cannot be overtaken by another request
(no check-then-act race), and the counters stay equal to the rows they count. The lock is held only
for these few statements; receiving and storing the bytes happens before, in parallel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from operator import attrgetter
from typing import Any, Final

import psycopg
from django.db import connection
from django.utils import timezone

from apps.archive.models import ArchiveUsage, Instance, Patient, Series, StorageExtrasUsage, Study
from apps.dicom.headers import IndexAttributes, assigned_patient_id
from apps.dicom.index_attributes import (
    PATIENT_RECORD,
    STORED_OF_LEVEL,
    ColumnKind,
    IndexedAttribute,
    Level,
    UpdatePolicy,
)
from apps.dicom.matching import normalise_person_name, person_name_keys
from apps.dicom.status import WarningReason
from tenants.deployment import Quotas

_LIST_SEPARATOR = "\\"  # never inside a CS or short string value (PS3.5 §6.2), so it can join them


class RowStatus(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # same SOP Instance UID, same bytes: success, nothing new written
    CONFLICT = "conflict"  # same SOP Instance UID, different bytes: refused, the original kept
    QUOTA = "quota"  # refused by the tenant's storage or studies-a-month quota
    SERIES_IN_OTHER_STUDY = "series_in_other_study"
    # Patient ID, Issuer, Patient Name or Birth Date contradicting the study's (docs/dicomweb.md)
    IDENTITY_CONFLICT = "identity_conflict"


@dataclass(frozen=True)
class IndexRow:
    attributes: IndexAttributes
    metadata_json: str
    object_key: str
    size_bytes: int
    sha256: str
    warnings: tuple[tuple[WarningReason, str], ...] = ()


@dataclass(frozen=True)
class PatientIdentity:
    """The attributes that say whose study it is; a study keeps those of its first instance."""

    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    patient_birth_date: date | None

    @classmethod
    def of(cls, attributes: IndexAttributes) -> PatientIdentity:
        return cls(attributes.patient_id, attributes.issuer_of_patient_id, attributes.patient_name,
                   attributes.patient_birth_date)

    def contradictions(self, received: PatientIdentity, *, study_instance_uid: str) -> dict[str, dict[str, str]]:
        """Per keyword, the stored and received values that contradict each other. An empty value
        on either side contradicts nothing (it only says less); so does the Patient ID the archive
        assigns to a study sent without one (ARCHIVE_ASSIGN_MISSING_PATIENT_ID), a stand-in for
        "unknown". Names are compared as QIDO-RS matches them (case and accents ignored)."""
        found: dict[str, dict[str, str]] = {}
        placeholder = assigned_patient_id(study_instance_uid)
        if placeholder not in (received.patient_id, self.patient_id) and received.patient_id != self.patient_id:
            found["PatientID"] = {"stored": self.patient_id, "received": received.patient_id}
        if (received.issuer_of_patient_id and self.issuer_of_patient_id
                and received.issuer_of_patient_id != self.issuer_of_patient_id):
            found["IssuerOfPatientID"] = {"stored": self.issuer_of_patient_id,
                                          "received": received.issuer_of_patient_id}
        if (received.patient_name and self.patient_name
                and normalise_person_name(received.patient_name) != normalise_person_name(self.patient_name)):
            found["PatientName"] = {"stored": self.patient_name, "received": received.patient_name}
        if (received.patient_birth_date and self.patient_birth_date
                and received.patient_birth_date != self.patient_birth_date):
            found["PatientBirthDate"] = {"stored": f"{self.patient_birth_date:%Y%m%d}",
                                         "received": f"{received.patient_birth_date:%Y%m%d}"}
        return found


@dataclass(frozen=True)
class IndexOutcome:
    row: IndexRow
    status: RowStatus
    detail: str = ""
    # For IDENTITY_CONFLICT: per keyword, {"stored": …, "received": …}.
    contradictions: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class _Known:
    """What the index already holds for the batch's UIDs (live rows only)."""

    instance_sha: dict[str, str] = field(default_factory=dict)
    study_of_series: dict[str, str] = field(default_factory=dict)
    studies: set[str] = field(default_factory=set)
    identity_of_study: dict[str, PatientIdentity] = field(default_factory=dict)


@dataclass
class IndexSummary:
    outcomes: list[IndexOutcome] = field(default_factory=list)
    # Study id → ids of its series that received new instances / that this batch created.
    touched_series_by_study: dict[int, set[int]] = field(default_factory=dict)
    new_series_by_study: dict[int, set[int]] = field(default_factory=dict)

    @property
    def stored(self) -> list[IndexOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == RowStatus.STORED]


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


class _BinaryCursor:
    """Runs statements on Django's connection (same transaction, same tenant search_path) as prepared
    statements with the parameters sent in binary: arrays of thousands of JSON texts go as they are,
    where the default client-side binding would escape every quote of them in Python."""

    def __init__(self) -> None:
        with connection.cursor():
            pass  # django-tenants sets the tenant's search_path when a cursor is made
        self._cursor = psycopg.Cursor(connection.connection)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        # Prepared on the connection: the large statements are planned once per connection, not per
        # request. (PostgreSQL re-plans a prepared statement when the tenant's search_path differs.)
        self._cursor.execute(sql.replace("%s", "%b"), params, prepare=True)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def close(self) -> None:
        self._cursor.close()


def lock_usage(cursor: Any) -> tuple[int, int]:
    """Lock the tenant's archive meter row (creating it once) and return (stored bytes, instances)."""
    usage = _table(ArchiveUsage)
    lock = f"UPDATE {usage} SET updated_at = now() WHERE id = 1 RETURNING stored_bytes, stored_instances"
    cursor.execute(lock)
    row = cursor.fetchone()
    if row is None:
        cursor.execute(
            f"INSERT INTO {usage} (id, stored_bytes, stored_instances, updated_at) VALUES (1, 0, 0, now()) "
            "ON CONFLICT (id) DO NOTHING"
        )
        cursor.execute(lock)
        row = cursor.fetchone()
    return int(row[0]), int(row[1])


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _known(cursor: Any, rows: Sequence[IndexRow]) -> _Known:
    instance_uids = list({row.attributes.sop_instance_uid for row in rows})
    series_uids = list({row.attributes.series_instance_uid for row in rows})
    study_uids = list({row.attributes.study_instance_uid for row in rows})
    cursor.execute(
        f"""
        SELECT 'instance', sop_instance_uid, sha256 FROM {_table(Instance)}
        WHERE sop_instance_uid = ANY(%s::varchar[]) AND deleted_at IS NULL
        UNION ALL
        SELECT 'series', series.series_instance_uid, study.study_instance_uid
        FROM {_table(Series)} AS series JOIN {_table(Study)} AS study ON study.id = series.study_id
        WHERE series.series_instance_uid = ANY(%s::varchar[]) AND series.deleted_at IS NULL
        UNION ALL
        SELECT 'study', study_instance_uid,
               json_build_array(patient_id, issuer_of_patient_id, patient_name, patient_birth_date)::text
        FROM {_table(Study)}
        WHERE study_instance_uid = ANY(%s::varchar[]) AND deleted_at IS NULL
        """,
        [instance_uids, series_uids, study_uids],
    )
    known = _Known()
    for kind, uid, value in cursor.fetchall():
        if kind == "instance":
            known.instance_sha[uid] = value
        elif kind == "series":
            known.study_of_series[uid] = value
        else:
            known.studies.add(uid)
            patient_id, issuer, name, birth_date = json.loads(value)
            known.identity_of_study[uid] = PatientIdentity(
                patient_id, issuer, name, date.fromisoformat(birth_date) if birth_date else None,
            )
    return known


def _classify(rows: Sequence[IndexRow], known: _Known) -> list[IndexOutcome | None]:
    """Duplicates, conflicts and misplaced series, against the index and earlier rows of the batch."""
    instance_sha = dict(known.instance_sha)
    study_of_series = dict(known.study_of_series)
    identity_of_study = dict(known.identity_of_study)
    decided: list[IndexOutcome | None] = []
    for row in rows:
        attributes = row.attributes
        existing = instance_sha.get(attributes.sop_instance_uid)
        if existing is not None:
            if existing == row.sha256:
                decided.append(IndexOutcome(row, RowStatus.DUPLICATE))
            else:
                decided.append(IndexOutcome(
                    row, RowStatus.CONFLICT,
                    "an instance with this SOP Instance UID and different content is already stored",
                ))
            continue
        expected_study = study_of_series.setdefault(attributes.series_instance_uid, attributes.study_instance_uid)
        if expected_study != attributes.study_instance_uid:
            decided.append(IndexOutcome(
                row, RowStatus.SERIES_IN_OTHER_STUDY, f"its Series Instance UID already belongs to study {expected_study}"
            ))
            continue
        # A new study takes the identity of its first instance in the batch; later ones must agree.
        received = PatientIdentity.of(attributes)
        contradictions = identity_of_study.setdefault(attributes.study_instance_uid, received).contradictions(
            received, study_instance_uid=attributes.study_instance_uid,
        )
        if contradictions:
            decided.append(IndexOutcome(
                row, RowStatus.IDENTITY_CONFLICT,
                f"its {', '.join(contradictions)} contradict{'s' if len(contradictions) == 1 else ''} the patient "
                f"identity of study {attributes.study_instance_uid}", contradictions,
            ))
            continue
        instance_sha[attributes.sop_instance_uid] = row.sha256
        decided.append(None)
    return decided


def _apply_quotas(
    cursor: Any, rows: Sequence[IndexRow], decided: list[IndexOutcome | None], quotas: Quotas, stored_bytes: int,
    known: _Known,
) -> None:
    if quotas.studies_per_month is not None:
        cursor.execute(f"SELECT count(*) FROM {_table(Study)} WHERE created_at >= %s", [_month_start(timezone.now())])
        remaining = quotas.studies_per_month - int(cursor.fetchone()[0])
        admitted: set[str] = set()
        refused: set[str] = set()
        for index, row in enumerate(rows):
            study = row.attributes.study_instance_uid
            if decided[index] is not None or study in known.studies or study in admitted:
                continue
            if study not in refused and remaining > 0:
                admitted.add(study)
                remaining -= 1
                continue
            refused.add(study)
            decided[index] = IndexOutcome(
                row, RowStatus.QUOTA, f"the plan's quota of {quotas.studies_per_month} new studies a month is used up"
            )
    if quotas.storage_bytes is not None:
        # The rendered cache and staged uploads count toward the storage quota too (read without a
        # lock: they are kept under their own row, see StorageExtrasUsage).
        cursor.execute(
            f"SELECT rendered_cache_bytes + staged_upload_bytes FROM {_table(StorageExtrasUsage)} WHERE id = 1"
        )
        extras = cursor.fetchone()
        running = stored_bytes + (int(extras[0]) if extras else 0)
        for index, row in enumerate(rows):
            if decided[index] is not None:
                continue
            if running + row.size_bytes > quotas.storage_bytes:
                decided[index] = IndexOutcome(
                    row, RowStatus.QUOTA, f"the plan's storage quota of {quotas.storage_bytes} bytes would be exceeded"
                )
            else:
                running += row.size_bytes


@dataclass
class _Deltas:
    """What a batch adds, per study and per series, computed before writing."""

    study_instances: dict[str, int] = field(default_factory=dict)
    study_bytes: dict[str, int] = field(default_factory=dict)
    study_new_series: dict[str, set[str]] = field(default_factory=dict)
    study_modalities: dict[str, set[str]] = field(default_factory=dict)
    series_instances: dict[str, int] = field(default_factory=dict)
    series_bytes: dict[str, int] = field(default_factory=dict)


def _deltas(rows: Sequence[IndexRow], known: _Known) -> _Deltas:
    deltas = _Deltas()
    for row in rows:
        attributes = row.attributes
        study, series = attributes.study_instance_uid, attributes.series_instance_uid
        deltas.study_instances[study] = deltas.study_instances.get(study, 0) + 1
        deltas.study_bytes[study] = deltas.study_bytes.get(study, 0) + row.size_bytes
        new_series = deltas.study_new_series.setdefault(study, set())
        if series not in known.study_of_series:
            new_series.add(series)
        modalities = deltas.study_modalities.setdefault(study, set())
        if attributes.modality:
            modalities.add(attributes.modality)
        deltas.series_instances[series] = deltas.series_instances.get(series, 0) + 1
        deltas.series_bytes[series] = deltas.series_bytes.get(series, 0) + row.size_bytes
    return deltas


def _first_by(rows: Sequence[IndexRow], key: Any) -> tuple[list[str], list[IndexAttributes]]:
    first: dict[Any, IndexAttributes] = {}
    for row in rows:
        first.setdefault(key(row.attributes), row.attributes)
    keys = sorted(first)  # a fixed order, so concurrent batches never lock rows in opposite orders
    return keys, [first[item] for item in keys]


_SQL_TYPE: Final = {
    ColumnKind.TEXT: "varchar", ColumnKind.UID: "varchar", ColumnKind.PERSON_NAME: "varchar",
    ColumnKind.DATE: "date", ColumnKind.TIME: "time", ColumnKind.DATETIME: "varchar", ColumnKind.INTEGER: "integer",
}
_SEPARATOR_SQL: Final = f"'{_LIST_SEPARATOR}'"


@dataclass(frozen=True, slots=True)
class _Input:
    """One registry-derived input of the batch insert: the column it fills (also its name in the
    unnest alias), the array's element type, how an instance's value is read, and whether it is
    sent as one text split back into an array column."""

    column: str
    sql_type: str
    value: Callable[[IndexAttributes], Any]
    split: bool = False

    @property
    def select(self) -> str:
        return f'string_to_array(input."{self.column}", {_SEPARATOR_SQL})' if self.split else f'input."{self.column}"'


def _normalised(read: Callable[[IndexAttributes], str]) -> Callable[[IndexAttributes], str]:
    return lambda item: normalise_person_name(read(item))


def _phonetic_keys(read: Callable[[IndexAttributes], str]) -> Callable[[IndexAttributes], str]:
    return lambda item: _LIST_SEPARATOR.join(person_name_keys(read(item)))


def _inputs(attributes: Sequence[IndexedAttribute], *, matching_copies: bool = True) -> tuple[_Input, ...]:
    """The inputs of `attributes`, with the person names' matching copies when the table has them."""
    inputs: list[_Input] = []
    for attribute in attributes:
        read = attrgetter(attribute.column)
        inputs.append(_Input(attribute.column, _SQL_TYPE[attribute.kind], read))
        if not matching_copies:
            continue
        if attribute.search_column:
            inputs.append(_Input(attribute.search_column, "varchar", _normalised(read)))
        if attribute.keys_column:
            inputs.append(_Input(attribute.keys_column, "text", _phonetic_keys(read), split=True))
    return tuple(inputs)


_PATIENT_INPUTS: Final = _inputs(PATIENT_RECORD, matching_copies=False)  # the Patient row is not matched
_STUDY_INPUTS: Final = _inputs(STORED_OF_LEVEL[Level.STUDY])
_SERIES_INPUTS: Final = _inputs(STORED_OF_LEVEL[Level.SERIES])
_INSTANCE_INPUTS: Final = _inputs(STORED_OF_LEVEL[Level.INSTANCE])


def _columns_sql(inputs: Sequence[_Input]) -> str:
    return ", ".join(f'"{item.column}"' for item in inputs)


def _selects_sql(inputs: Sequence[_Input]) -> str:
    return ", ".join(item.select for item in inputs)


def _arrays_sql(inputs: Sequence[_Input]) -> str:
    return ", ".join(f"%s::{item.sql_type}[]" for item in inputs)


def _fill_empty_sql(table: str, level: Level) -> str:
    """The `ON CONFLICT DO UPDATE` assignments of the level's fill-empty attributes (registry policy)."""
    return "".join(
        f',\n                "{item.column}" = CASE WHEN {table}."{item.column}" = \'\' '
        f'THEN EXCLUDED."{item.column}" ELSE {table}."{item.column}" END'
        for item in STORED_OF_LEVEL[level] if item.policy == UpdatePolicy.FILL_EMPTY
    )


@cache
def batch_insert_sql() -> str:
    """The one statement that writes a batch: its column lists derive from the registry
    (apps.dicom.index_attributes); the counters, keys and bookkeeping columns are the indexer's own."""
    patient, study, series, instance = _table(Patient), _table(Study), _table(Series), _table(Instance)
    return f"""
        WITH patient_rows AS (
            INSERT INTO {patient} ({_columns_sql(_PATIENT_INPUTS)}, created_at, updated_at)
            SELECT {_selects_sql(_PATIENT_INPUTS)}, now(), now()
            FROM unnest({_arrays_sql(_PATIENT_INPUTS)}) AS input({_columns_sql(_PATIENT_INPUTS)})
            ON CONFLICT (patient_id, issuer_of_patient_id) DO UPDATE SET updated_at = EXCLUDED.updated_at
            RETURNING id, patient_id, issuer_of_patient_id
        ), study_rows AS (
            INSERT INTO {study}
                (patient_record_id, {_columns_sql(_STUDY_INPUTS)}, modalities_in_study, number_of_series,
                 number_of_instances, size_bytes, created_at, last_instance_at)
            SELECT patient_rows.id, {_selects_sql(_STUDY_INPUTS)},
                   string_to_array(input.modalities_in_study, {_SEPARATOR_SQL}), input.number_of_series,
                   input.number_of_instances, input.size_bytes, now(), now()
            FROM unnest({_arrays_sql(_STUDY_INPUTS)}, %s::text[], %s::integer[], %s::integer[], %s::bigint[])
                 AS input({_columns_sql(_STUDY_INPUTS)}, modalities_in_study, number_of_series, number_of_instances,
                          size_bytes)
            JOIN patient_rows ON patient_rows.patient_id = input.patient_id
                             AND patient_rows.issuer_of_patient_id = input.issuer_of_patient_id
            ON CONFLICT (study_instance_uid) WHERE deleted_at IS NULL DO UPDATE SET
                number_of_instances = {study}.number_of_instances + EXCLUDED.number_of_instances,
                number_of_series = {study}.number_of_series + EXCLUDED.number_of_series,
                size_bytes = {study}.size_bytes + EXCLUDED.size_bytes,
                modalities_in_study = ARRAY(
                    SELECT DISTINCT modality
                    FROM unnest({study}.modalities_in_study || EXCLUDED.modalities_in_study) AS modality
                    WHERE modality <> '' ORDER BY modality),
                last_instance_at = EXCLUDED.last_instance_at,
                stable_at = NULL{_fill_empty_sql(study, Level.STUDY)}
            RETURNING id, study_instance_uid
        ), series_rows AS (
            INSERT INTO {series}
                (study_id, {_columns_sql(_SERIES_INPUTS)}, number_of_instances, size_bytes, created_at)
            SELECT study_rows.id, {_selects_sql(_SERIES_INPUTS)}, input.number_of_instances, input.size_bytes, now()
            FROM unnest({_arrays_sql(_SERIES_INPUTS)}, %s::varchar[], %s::integer[], %s::bigint[])
                 AS input({_columns_sql(_SERIES_INPUTS)}, study_uid, number_of_instances, size_bytes)
            JOIN study_rows ON study_rows.study_instance_uid = input.study_uid
            ON CONFLICT (series_instance_uid) WHERE deleted_at IS NULL DO UPDATE SET
                number_of_instances = {series}.number_of_instances + EXCLUDED.number_of_instances,
                size_bytes = {series}.size_bytes + EXCLUDED.size_bytes{_fill_empty_sql(series, Level.SERIES)}
            RETURNING id, series_instance_uid, study_id
        ), instance_rows AS (
            INSERT INTO {instance}
                (series_id, study_id, {_columns_sql(_INSTANCE_INPUTS)}, size_bytes, sha256, object_key,
                 metadata_json, created_at)
            SELECT series_rows.id, series_rows.study_id, {_selects_sql(_INSTANCE_INPUTS)}, input.size_bytes,
                   input.sha256, input.object_key, input.metadata_json, now()
            FROM unnest({_arrays_sql(_INSTANCE_INPUTS)}, %s::varchar[], %s::bigint[], %s::varchar[], %s::varchar[],
                        %s::text[])
                 AS input({_columns_sql(_INSTANCE_INPUTS)}, series_uid, size_bytes, sha256, object_key, metadata_json)
            JOIN series_rows ON series_rows.series_instance_uid = input.series_uid
            ON CONFLICT (sop_instance_uid) WHERE deleted_at IS NULL DO NOTHING
            RETURNING 1
        ), usage_rows AS (
            UPDATE {_table(ArchiveUsage)} SET stored_bytes = stored_bytes + %s, stored_instances = stored_instances + %s
            WHERE id = 1
            RETURNING 1
        )
        SELECT 'instances', '', (SELECT count(*) FROM instance_rows), 0
        UNION ALL SELECT 'study', study_instance_uid, id, 0 FROM study_rows
        UNION ALL SELECT 'series', series_instance_uid, id, study_id FROM series_rows
        UNION ALL SELECT 'usage', '', (SELECT count(*) FROM usage_rows), 0
        """


def _values(inputs: Sequence[_Input], items: Sequence[IndexAttributes]) -> list[list[Any]]:
    return [list(map(item.value, items)) for item in inputs]


def _write(cursor: Any, rows: Sequence[IndexRow], deltas: _Deltas) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Patients, studies, series and instances in one statement; returns study and series ids."""
    _patient_keys, patients = _first_by(rows, lambda a: (a.patient_id, a.issuer_of_patient_id))
    study_uids, studies = _first_by(rows, lambda a: a.study_instance_uid)
    series_uids, series = _first_by(rows, lambda a: a.series_instance_uid)
    instances = [row.attributes for row in rows]
    cursor.execute(
        batch_insert_sql(),
        [
            *_values(_PATIENT_INPUTS, patients),
            *_values(_STUDY_INPUTS, studies),
            [_LIST_SEPARATOR.join(sorted(deltas.study_modalities[uid])) for uid in study_uids],
            [len(deltas.study_new_series[uid]) for uid in study_uids],
            [deltas.study_instances[uid] for uid in study_uids], [deltas.study_bytes[uid] for uid in study_uids],
            *_values(_SERIES_INPUTS, series),
            [item.study_instance_uid for item in series],
            [deltas.series_instances[uid] for uid in series_uids], [deltas.series_bytes[uid] for uid in series_uids],
            *_values(_INSTANCE_INPUTS, instances),
            [item.series_instance_uid for item in instances],
            [row.size_bytes for row in rows], [row.sha256 for row in rows], [row.object_key for row in rows],
            [row.metadata_json for row in rows],
            # meter
            sum(row.size_bytes for row in rows), len(rows),
        ],
    )
    study_ids: dict[str, int] = {}
    series_ids: dict[str, tuple[int, int]] = {}
    inserted = 0
    for kind, uid, identifier, parent in cursor.fetchall():
        if kind == "instances":
            inserted = int(identifier)
        elif kind == "study":
            study_ids[uid] = int(identifier)
        elif kind == "series":
            series_ids[uid] = (int(identifier), int(parent))
    if inserted != len(rows):  # cannot happen under the archive lock; a guard, never a silent miscount
        raise RuntimeError(f"{inserted} of {len(rows)} instances were indexed despite the archive lock")
    return study_ids, series_ids


def index_rows(*, rows: Sequence[IndexRow], quotas: Quotas | None = None) -> IndexSummary:
    """Index a batch; call inside `transaction.atomic()`. Rows are decided in order: a later row with
    the SOP Instance UID of an earlier one is its duplicate or conflict."""
    summary = IndexSummary()
    if not rows:
        return summary
    cursor = _BinaryCursor()
    try:
        stored_bytes, _ = lock_usage(cursor)
        known = _known(cursor, rows)
        decided = _classify(rows, known)
        if quotas is not None and not quotas.unlimited:
            _apply_quotas(cursor, rows, decided, quotas, stored_bytes, known)
        new_rows = [row for row, outcome in zip(rows, decided, strict=True) if outcome is None]
        if new_rows:
            study_ids, series_ids = _write(cursor, new_rows, _deltas(new_rows, known))
            for row in new_rows:
                series_id, study_id = series_ids[row.attributes.series_instance_uid]
                summary.touched_series_by_study.setdefault(study_id, set()).add(series_id)
                if row.attributes.series_instance_uid not in known.study_of_series:
                    summary.new_series_by_study.setdefault(study_id, set()).add(series_id)
    finally:
        cursor.close()
    summary.outcomes = [outcome or IndexOutcome(row, RowStatus.STORED) for row, outcome in zip(rows, decided, strict=True)]
    return summary
