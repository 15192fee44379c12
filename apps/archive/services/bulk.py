"""Fill the index directly from attribute mappings, without objects behind the rows.

For the QIDO-RS scale benchmark (bench/scale_index.py fills 10,000 studies / 1,000,000 instances)
and for tools that rebuild or seed an index. Rows go through the same batch indexer as STOW-RS
(same SQL, counters and lock), in chunks, one transaction each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final

from django.db import transaction

from apps.archive.keys import instance_object_key
from apps.archive.services.indexing import IndexRow, RowStatus, index_rows
from apps.audit.services import Actor, audit_record
from apps.dicom.headers import IndexAttributes, index_value
from apps.dicom.index_attributes import INSTANCE_VALUES, ColumnKind
from apps.dicom.json_model import attributes_to_json, dumps

BULK_UPLOAD_ID = "bulk-load"


@dataclass(frozen=True)
class BulkLoadSummary:
    instances: int
    indexed: int
    already_indexed: int
    refused: int


def _integer(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# (column, keyword read, kind, maximum length) of every value an instance carries into the index.
_COLUMNS: Final = tuple(
    (attribute.column, attribute.source_keyword, attribute.kind, attribute.max_length) for attribute in INSTANCE_VALUES
)
_DEFAULT_TRANSFER_SYNTAX_UID = "1.2.840.10008.1.2.1"


def index_attributes_of_mapping(attributes: Mapping[str, Any]) -> IndexAttributes:
    """The index attributes of a flat mapping (keyword → value): every value the registry says an
    instance carries, read under its keyword (the transfer syntax under TransferSyntaxUID)."""
    values: dict[str, Any] = {}
    for column, keyword, kind, max_length in _COLUMNS:
        value = attributes.get(keyword)
        if kind == ColumnKind.INTEGER:
            values[column] = _integer(value)
        else:
            values[column] = index_value(kind, "" if value is None else str(value).strip(), max_length)
    values["transfer_syntax_uid"] = values["transfer_syntax_uid"] or _DEFAULT_TRANSFER_SYNTAX_UID
    return IndexAttributes(**values)


def _row(attributes: Mapping[str, Any]) -> IndexRow:
    index = index_attributes_of_mapping(attributes)
    metadata = {key: value for key, value in attributes.items() if key != "TransferSyntaxUID"}
    return IndexRow(
        attributes=index,
        metadata_json=dumps(attributes_to_json(metadata)),
        object_key=instance_object_key(
            study_instance_uid=index.study_instance_uid, series_instance_uid=index.series_instance_uid,
            sop_instance_uid=index.sop_instance_uid, upload_id=BULK_UPLOAD_ID,
        ),
        size_bytes=int(attributes.get("_size_bytes", 0) or 0),
        sha256=str(attributes.get("_sha256", "")),
    )


def index_bulk_load(
    *, datasets: Iterable[Mapping[str, Any]], chunk_size: int = 5000, actor: Actor | None = None
) -> BulkLoadSummary:
    """Index flat attribute mappings (DICOM keyword → value, as `bench.scale_index` yields them).

    Idempotent: an instance already indexed with the same (empty) content counts as already indexed.
    """
    actor = actor or Actor.system("archive.bulk_load")
    totals = {"instances": 0, "indexed": 0, "already": 0, "refused": 0}
    iterator = iter(datasets)
    while chunk := list(islice(iterator, chunk_size)):
        rows = [_row(attributes) for attributes in chunk]
        with transaction.atomic():
            summary = index_rows(rows=rows)
            indexed = len(summary.stored)
            already = sum(1 for outcome in summary.outcomes if outcome.status == RowStatus.DUPLICATE)
            audit_record(
                action="archive.bulk_load", actor=actor, object_type="archive",
                detail={"instances": len(rows), "indexed": indexed, "already_indexed": already},
            )
        totals["instances"] += len(rows)
        totals["indexed"] += indexed
        totals["already"] += already
        totals["refused"] += len(rows) - indexed - already
    return BulkLoadSummary(
        instances=totals["instances"], indexed=totals["indexed"], already_indexed=totals["already"],
        refused=totals["refused"],
    )
