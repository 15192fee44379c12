"""Fill the index directly from attribute mappings, without objects behind the rows.

For the QIDO-RS scale benchmark (bench/scale_index.py fills 10,000 studies / 1,000,000 instances)
and for tools that rebuild or seed an index. Rows go through the same batch indexer as STOW-RS
(same SQL, counters and lock), in chunks, one transaction each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from itertools import islice
from typing import Any, Final

from django.db import transaction

from apps.archive.keys import instance_object_key
from apps.archive.services.indexing import IndexRow, RowStatus, index_rows
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.dicom.headers import IndexAttributes, text_converter
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


_ATTRIBUTE_OF_COLUMN: Final = {item.column: item for item in INSTANCE_VALUES}
# (keyword read, whether an integer, converter) of every value an instance carries into the index,
# in the order of IndexAttributes' fields (so a row is built positionally, without a dict).
_COLUMNS: Final = tuple(
    (item.source_keyword, item.kind == ColumnKind.INTEGER, text_converter(item.kind, item.max_length))
    for item in (_ATTRIBUTE_OF_COLUMN[field.name] for field in fields(IndexAttributes))
)
_TRANSFER_SYNTAX_POSITION: Final = [field.name for field in fields(IndexAttributes)].index("transfer_syntax_uid")
_DEFAULT_TRANSFER_SYNTAX_UID = "1.2.840.10008.1.2.1"


def index_attributes_of_mapping(attributes: Mapping[str, Any]) -> IndexAttributes:
    """The index attributes of a flat mapping (keyword → value): every value the registry says an
    instance carries, read under its keyword (the transfer syntax under TransferSyntaxUID)."""
    get = attributes.get
    values: list[Any] = [
        _integer(get(keyword)) if integer else convert("" if (value := get(keyword)) is None else str(value).strip())
        for keyword, integer, convert in _COLUMNS
    ]
    values[_TRANSFER_SYNTAX_POSITION] = values[_TRANSFER_SYNTAX_POSITION] or _DEFAULT_TRANSFER_SYNTAX_UID
    return IndexAttributes(*values)


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
                action=AuditAction.ARCHIVE_BULK_LOAD, actor=actor, object_type="archive",
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
