"""Reads of the AI app: engines as the tenant sees them, jobs, routing rules, triage flags."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, F, Q, QuerySet

from apps.ai.models import AIJob, EngineSetting, JobState, RoutingRule
from apps.ai.registry import RegisteredEngine, registered_engines
from apps.archive.models import Series, Study
from apps.dicom.modalities import NON_IMAGE_MODALITIES

# Series that hold results, not images an engine could read.


def engines_registered() -> list[RegisteredEngine]:
    return registered_engines(EngineSetting.objects.all())


def engine_registered(name: str) -> RegisteredEngine | None:
    return next((engine for engine in engines_registered() if engine.descriptor.name == name), None)


def jobs_list(*, study_instance_uid: str | None = None, state: str | None = None) -> QuerySet[AIJob]:
    jobs = AIJob.objects.all()
    if study_instance_uid:
        jobs = jobs.filter(study_instance_uid=study_instance_uid)
    if state:
        jobs = jobs.filter(state=state)
    return jobs.order_by("-created_at")


def job_get(job_id: uuid.UUID | str) -> AIJob | None:
    return AIJob.objects.filter(pk=job_id).first()


def job_finished_result(*, engine_name: str, engine_version: str, study_instance_uid: str) -> AIJob | None:
    """The latest succeeded job of this engine version on this study (reused unless forced)."""
    return (AIJob.objects.filter(engine_name=engine_name, engine_version=engine_version,
                                 study_instance_uid=study_instance_uid, state=JobState.SUCCEEDED)
            .order_by("-finished_at").first())


def job_active(*, engine_name: str, engine_version: str, study_instance_uid: str) -> AIJob | None:
    return AIJob.objects.filter(engine_name=engine_name, engine_version=engine_version,
                                study_instance_uid=study_instance_uid,
                                state__in=[JobState.QUEUED, JobState.RUNNING]).first()


def jobs_running_count(*, excluding: uuid.UUID | str | None = None) -> int:
    running = AIJob.objects.filter(state=JobState.RUNNING)
    return (running.exclude(pk=excluding) if excluding is not None else running).count()


def routing_rules(*, enabled_only: bool = False) -> QuerySet[RoutingRule]:
    rules = RoutingRule.objects.all()
    return rules.filter(enabled=True) if enabled_only else rules


def study_live(study_instance_uid: str) -> Study | None:
    return Study.objects.filter(study_instance_uid=study_instance_uid, deleted_at__isnull=True).first()


def image_series_of_study(study_instance_uid: str) -> list[dict[str, Any]]:
    """Live image series of a live study, largest first: uid, modality, body part, image count."""
    return list(
        Series.objects.filter(study__study_instance_uid=study_instance_uid, study__deleted_at__isnull=True,
                              deleted_at__isnull=True)
        .exclude(modality__in=sorted(NON_IMAGE_MODALITIES))
        .annotate(images=Count("instances", filter=Q(instances__deleted_at__isnull=True,
                                                      instances__rows__isnull=False)))
        .filter(images__gt=0)
        .order_by(F("images").desc(), "id")
        .values("series_instance_uid", "modality", "body_part_examined", "images")
    )


def triage_text(summary: dict[str, Any]) -> str:
    count = summary.get("finding_count", 0)
    noun = summary.get("finding_noun", "finding")
    if not count:
        return f"no {noun}s"
    largest = summary.get("largest_mm")
    plural = noun if count == 1 else f"{noun}s"
    return f"{count} {plural}" + (f", largest {largest:.0f} mm" if largest is not None else "")


def triage_flags_for_studies(study_instance_uids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per study, the latest succeeded job's triage summary, e.g. {"text": "3 nodules, largest 9 mm",
    "flag": True, ...}; studies without a finished job are absent. For a worklist, one query."""
    uids = list(study_instance_uids)
    flags: dict[str, dict[str, Any]] = {}
    jobs = (AIJob.objects.filter(study_instance_uid__in=uids, state=JobState.SUCCEEDED)
            .order_by("study_instance_uid", "-finished_at")
            .distinct("study_instance_uid")
            .values("study_instance_uid", "id", "engine_name", "engine_version", "summary"))
    for job in jobs:
        triage = dict(job["summary"].get("triage", {}))
        triage.update({"job_id": str(job["id"]), "engine_name": job["engine_name"],
                       "engine_version": job["engine_version"]})
        flags[job["study_instance_uid"]] = triage
    return flags


def findings_of_studies(study_instance_uids: Iterable[str]) -> list[dict[str, Any]]:
    """The findings of the latest succeeded job of each engine on each of these studies, from the
    job summaries (``summary["findings"]``, one entry per nodule with its Tracking UID, centre slice
    and measurements), each with its job's id, engine and study. Oldest study first, then engine."""
    jobs = (AIJob.objects.filter(study_instance_uid__in=list(study_instance_uids), state=JobState.SUCCEEDED)
            .order_by("study_instance_uid", "engine_name", "-finished_at")
            .distinct("study_instance_uid", "engine_name")
            .values("id", "engine_name", "engine_version", "study_instance_uid", "summary"))
    return [{**finding, "job_id": str(job["id"]), "engine_name": job["engine_name"],
             "engine_version": job["engine_version"], "study_instance_uid": job["study_instance_uid"]}
            for job in jobs for finding in (job["summary"] or {}).get("findings", [])]
