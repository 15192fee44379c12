"""AI jobs, per-tenant engine settings and routing rules (tenant schema).

A job runs one engine version on one study: queued → running → succeeded | failed | cancelled.
Its results (a SEG and a TID 1500 SR series in the tenant's archive, and a JSON summary) are
written in the same transaction that marks it succeeded, so a failed job stores nothing.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobTrigger(models.TextChoices):
    MANUAL = "manual", "Started by a user"
    ROUTING = "routing", "Started by a routing rule"


class EngineKind(models.TextChoices):
    BUILT_IN = "built_in", "Built into the platform"
    ONNX = "onnx", "ONNX model run on the CPU"
    EXTERNAL = "external", "Vendor system called over HTTP"


class EngineSetting(models.Model):
    """A tenant's choices for one engine: enabled or not, its time-out, and (for engines that are
    not built in) how to reach it: an ONNX model spec or a vendor URL, in ``definition``."""

    engine_name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=EngineKind.choices, default=EngineKind.BUILT_IN)
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.FloatField(default=600.0)
    definition = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["engine_name"]


class RoutingRule(models.Model):
    """Start ``engine_name`` on a stable study whose series match all of the given criteria
    (an empty criterion matches anything)."""

    name = models.CharField(max_length=200)
    engine_name = models.CharField(max_length=100)
    modality = models.CharField(max_length=16, blank=True, default="")
    body_part = models.CharField(max_length=64, blank=True, default="")
    study_description_pattern = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class AIJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    engine_name = models.CharField(max_length=100)
    engine_version = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    trigger = models.CharField(max_length=16, choices=JobTrigger.choices, default=JobTrigger.MANUAL)
    routing_rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    forced = models.BooleanField(default=False)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_detail = models.TextField(blank=True, default="")
    source_series_instance_uid = models.CharField(max_length=64, blank=True, default="")
    result_series_instance_uids = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    idempotency_key = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # When its run message was sent: a public-cloud tenant has at most its running cap of jobs in
    # flight (dispatched or running) on the shared queue; the rest wait here, unsent (fair share).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # External engines: the secret the vendor's call-back must present (only its hash is kept).
    callback_secret_hash = models.CharField(max_length=64, blank=True, default="")
    # External engines: the short-lived API token issued for this job (revoked when the job ends).
    access_token_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["study_instance_uid", "engine_name", "engine_version", "state"]),
            models.Index(fields=["state", "created_at"]),
        ]
        constraints = [
            # At most one queued or running job per engine version and study: starting it again joins it.
            models.UniqueConstraint(
                fields=["engine_name", "engine_version", "study_instance_uid"],
                condition=models.Q(state__in=["queued", "running"]),
                name="ai_job_one_active_per_engine_and_study",
            ),
        ]

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES
