"""Fill the index directly from attribute mappings, without objects behind the rows.

For the QIDO-RS scale benchmark (bench/scale_index.py fills 10,000 studies / 1,000,000 instances)
and for tools that rebuild or seed an index. Rows go through the same batch indexer as STOW-RS
(same SQL, counters and lock), in chunks, one transaction each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from django.db import transaction

from apps.archive.keys import instance_object_key
from apps.archive.services.indexing import IndexRow, RowStatus, index_rows
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.dicom.headers import IndexAttributes, datetime_key, parse_date, parse_time
from apps.dicom.json_model import attributes_to_json, dumps

BULK_UPLOAD_ID = "bulk-load"


@dataclass(frozen=True)
class BulkLoadSummary:
    instances: int
    indexed: int
    already_indexed: int
    refused: int


def _text(attributes: Mapping[str, Any], keyword: str, limit: int = 64) -> str:
    value = attributes.get(keyword)
    return "" if value is None else str(value).strip()[:limit]


def _integer(attributes: Mapping[str, Any], keyword: str) -> int | None:
    value = attributes.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _index_attributes(attributes: Mapping[str, Any]) -> IndexAttributes:
    return IndexAttributes(
        patient_id=_text(attributes, "PatientID"),
        issuer_of_patient_id=_text(attributes, "IssuerOfPatientID"),
        patient_name=_text(attributes, "PatientName", 330),
        patient_birth_date=parse_date(_text(attributes, "PatientBirthDate")),
        patient_sex=_text(attributes, "PatientSex", 16),
        study_instance_uid=_text(attributes, "StudyInstanceUID"),
        study_date=parse_date(_text(attributes, "StudyDate")),
        study_time=parse_time(_text(attributes, "StudyTime")),
        accession_number=_text(attributes, "AccessionNumber"),
        study_id=_text(attributes, "StudyID"),
        study_description=_text(attributes, "StudyDescription", 256),
        referring_physician_name=_text(attributes, "ReferringPhysicianName", 330),
        series_instance_uid=_text(attributes, "SeriesInstanceUID"),
        modality=_text(attributes, "Modality", 16),
        series_number=_integer(attributes, "SeriesNumber"),
        series_description=_text(attributes, "SeriesDescription", 256),
        body_part_examined=_text(attributes, "BodyPartExamined"),
        performed_procedure_step_start_date=parse_date(_text(attributes, "PerformedProcedureStepStartDate")),
        performed_procedure_step_start_time=parse_time(_text(attributes, "PerformedProcedureStepStartTime")),
        sop_class_uid=_text(attributes, "SOPClassUID"),
        sop_instance_uid=_text(attributes, "SOPInstanceUID"),
        instance_number=_integer(attributes, "InstanceNumber"),
        rows=_integer(attributes, "Rows"),
        columns=_integer(attributes, "Columns"),
        number_of_frames=_integer(attributes, "NumberOfFrames"),
        bits_allocated=_integer(attributes, "BitsAllocated"),
        acquisition_datetime=datetime_key(_text(attributes, "AcquisitionDateTime")),
        transfer_syntax_uid=_text(attributes, "TransferSyntaxUID") or "1.2.840.10008.1.2.1",
    )


def _row(attributes: Mapping[str, Any]) -> IndexRow:
    index = _index_attributes(attributes)
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
