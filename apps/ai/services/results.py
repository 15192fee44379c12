"""A job's results: triage of the findings, the SEG and SR built from them, and storing them with the
job's success in one transaction."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from pydicom.dataset import Dataset

from apps.ai import selectors
from apps.ai.engines.base import (
    EngineResult,
    Nodule,
    OutputKind,
)
from apps.ai.models import AIJob, JobState
from apps.ai.results.dicom_results import (
    ResultCreator,
    build_nodule_measurement_report,
    build_nodule_segmentation,
    nodule_finding_references,
    to_bytes,
)
from apps.ai.services.base import (
    AI_ACTOR,
    REPORT_SERIES_NUMBER,
    SEGMENTATION_SERIES_NUMBER,
    TRIAGE_FLAG_DIAMETER_MM,
    JobFailure,
    RunOutcome,
)
from apps.ai.services.jobs import dispatch_next_after_commit
from apps.ai.workflow import AI_JOB_WORKFLOW
from apps.archive.services.ingest import StreamPart, instances_store
from apps.audit.actions import AuditAction
from apps.audit.services import audited_move
from apps.core.errors import InvalidInput


def _triage(result: EngineResult) -> dict[str, Any]:
    nodules = [finding for finding in result.findings if isinstance(finding, Nodule)]
    if nodules or "nodule_count" in result.summary:
        largest = max((nodule.long_axis_mm for nodule in nodules), default=None)
        triage: dict[str, Any] = {"finding_count": len(nodules), "finding_noun": "nodule",
                                  "largest_mm": None if largest is None else round(largest, 1)}
        triage["flag"] = largest is not None and largest >= TRIAGE_FLAG_DIAMETER_MM
    else:
        triage = {"finding_count": len(result.findings), "finding_noun": "finding", "largest_mm": None,
                  "flag": bool(result.findings)}
    triage["text"] = selectors.triage_text(triage)
    return triage


class InvalidSummary(InvalidInput):
    code = "invalid_summary"
    status = 422


def _summary_number(summary: dict[str, Any], *names: str) -> float | None:
    """The first of `names` present in an engine's summary, as a number (None when absent or null)."""
    for name in names:
        value = summary.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
            raise InvalidSummary(f"summary.{name} must be a non-negative number, not {str(value)[:50]!r}")
        return float(value)
    return None


def triage_of_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Triage of a summary an external engine reported (``finding_count``, ``largest_mm``, ``finding_noun``);
    a summary of another shape is refused (422 ``invalid_summary``), never a server error."""
    count = int(_summary_number(summary, "finding_count", "nodule_count") or 0)
    largest = _summary_number(summary, "largest_mm", "largest_long_axis_mm")
    noun = summary.get("finding_noun", "finding")
    if not isinstance(noun, str) or len(noun) > 64:
        raise InvalidSummary("summary.finding_noun must be a word of at most 64 characters")
    triage: dict[str, Any] = {"finding_count": count, "finding_noun": noun, "largest_mm": largest,
                              "flag": largest is not None and largest >= TRIAGE_FLAG_DIAMETER_MM or
                              (largest is None and count > 0)}
    triage["text"] = selectors.triage_text(triage)
    return triage


@dataclass(frozen=True)
class EncodedResults:
    """The SEG and SR as Part 10 bytes, and per finding what the reading page needs to list it."""

    payloads: list[bytes]
    findings: list[dict[str, Any]]


def _encode_results(result: EngineResult, datasets: list[Dataset]) -> EncodedResults:
    """SEG and SR of nodule findings, built completely in memory before anything is stored.

    ``findings`` (the job summary's ``findings``) names each nodule by the Tracking UID its SEG
    segment and SR groups carry, so a radiologist's verdict on it refers to the stored objects."""
    nodules = [finding for finding in result.findings if isinstance(finding, Nodule)]
    if not nodules or OutputKind.SEGMENTATION not in result.engine.outputs:
        return EncodedResults(payloads=[], findings=[])
    creator = ResultCreator.from_descriptor(result.engine)
    try:
        segmentation = build_nodule_segmentation(datasets, nodules, creator=creator,
                                                 series_number=SEGMENTATION_SERIES_NUMBER)
        report = build_nodule_measurement_report(datasets, segmentation, nodules, creator=creator,
                                                 series_number=REPORT_SERIES_NUMBER)
        references = nodule_finding_references(datasets, segmentation, nodules)
    except ValueError as error:
        raise JobFailure("result_encoding_failed", str(error)) from error
    findings = [{
        **reference.as_json(), "label": nodule.label, "lung_side": nodule.lung_side,
        "long_axis_mm": round(nodule.long_axis_mm, 1), "short_axis_mm": round(nodule.short_axis_mm, 1),
        "volume_mm3": None if nodule.volume_mm3 is None else round(nodule.volume_mm3, 1),
        "segmentation_sop_instance_uid": str(segmentation.SOPInstanceUID),
        "report_sop_instance_uid": str(report.SOPInstanceUID),
    } for reference, nodule in zip(references, nodules, strict=True)]
    return EncodedResults(payloads=[to_bytes(segmentation), to_bytes(report)], findings=findings)


def _job_complete(job_id: uuid.UUID | str, *, source_series_uid: str, summary: dict[str, Any],
                  payloads: list[bytes]) -> str:
    """Store the result objects and mark the job succeeded in one transaction.

    A top-level action (a durable transaction): the objects it stores are named only by the rows it
    commits, so it refuses to run inside an outer transaction whose rollback would orphan them."""
    with transaction.atomic(durable=True):
        job = AIJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != JobState.RUNNING:
            return RunOutcome.CANCELLED
        result_series: list[str] = []
        if payloads:
            report = instances_store(
                parts=[StreamPart(io.BytesIO(payload)) for payload in payloads], actor=AI_ACTOR,
                expected_study_instance_uid=job.study_instance_uid, via="ai",
            )
            if report.failed or len(report.stored) != len(payloads):
                reasons = "; ".join(item.detail for item in report.failed)
                # Raising rolls back the rows indexed above: the job stores nothing.
                raise JobFailure("results_not_stored", f"the archive refused the results: {reasons}")
            result_series = list(dict.fromkeys(item.series_instance_uid for item in report.stored))
        audited_move(job, AI_JOB_WORKFLOW, "succeed", actor=AI_ACTOR, action=AuditAction.AI_JOB_SUCCEED,
                     object_type="ai_job",
                     detail={"results": result_series, "triage": summary.get("triage", {}).get("text", "")},
                     progress=100, finished_at=timezone.now(), summary=summary,
                     source_series_instance_uid=source_series_uid, result_series_instance_uids=result_series,
                     error_code="", error_detail="")
        dispatch_next_after_commit()
    return RunOutcome.SUCCEEDED
