"""Each side's working records of a consult, in its own tenant schema.

Clinic: `ClinicConsult`, the request as sent and the latest report as received (with the SR and PDF
it was delivered as), and one `ClinicReportVersion` per signed version received (the original and
each addendum, each with its own PDF: an addendum never replaces the original). Hospital: `HospitalConsult`, its worklist entry with a copy of the clinical
question and internal notes, and `ReportVersion`s (drafts, the signed report, addenda: every
version kept), and `AIFindingVerdict`s, its radiologists' verdicts on the AI findings of the
consult's studies (apps/consults/ai_findings.py). The shared state lives on `apps.consult_routing.models.ConsultRoute`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models


class ClinicConsult(models.Model):
    route_id = models.UUIDField(unique=True)
    hospital_slug = models.CharField(max_length=40)
    requested_by = models.CharField(max_length=150)
    clinical_question = models.TextField()
    relevant_history = models.TextField(blank=True, default="")
    # The signed report as received: findings, impression, recommendations, key images, signer.
    report = models.JSONField(null=True, blank=True)
    report_version = models.PositiveIntegerField(default=0)
    report_pdf_key = models.CharField(max_length=300, blank=True, default="")
    report_sr_sop_instance_uid = models.CharField(max_length=64, blank=True, default="")
    delivered_version = models.PositiveIntegerField(default=0)
    # What the hospital said back: its question when it returned the request, its reason when it refused.
    hospital_question = models.TextField(blank=True, default="")
    reject_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)


class ClinicReportVersion(models.Model):
    """One signed version of a consult's report as the clinic received it (the original or an addendum)."""

    route_id = models.UUIDField()
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=12)
    # The signed version as received: findings, impression, recommendations, key images, signer.
    report = models.JSONField()
    pdf_key = models.CharField(max_length=300, blank=True, default="")
    sr_sop_instance_uid = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route_id", "version"], name="clinic_report_version")]

    @property
    def is_addendum(self) -> bool:
        return self.kind == "addendum"

    @property
    def signed_at(self) -> datetime | None:
        stamp = self.report.get("signed_at")
        return datetime.fromisoformat(stamp) if stamp else None


class HospitalConsult(models.Model):
    route_id = models.UUIDField(unique=True)
    clinic_slug = models.CharField(max_length=40)
    clinic_name = models.CharField(max_length=200)
    clinical_question = models.TextField()
    relevant_history = models.TextField(blank=True, default="")
    study_summary = models.JSONField(default=dict, blank=True)
    internal_notes = models.TextField(blank=True, default="")
    return_question = models.TextField(blank=True, default="")
    reject_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)


class ReportKind(models.TextChoices):
    DRAFT = "draft"
    PRELIMINARY = "preliminary"
    FINAL = "final"
    ADDENDUM = "addendum"


class ReportVersion(models.Model):
    """One version of a consult's report. A draft is edited in place; signing freezes it."""

    route_id = models.UUIDField()
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=ReportKind.choices, default=ReportKind.DRAFT)
    modality_template = models.CharField(max_length=16, default="general")
    findings = models.TextField(blank=True, default="")
    impression = models.TextField(blank=True, default="")
    recommendations = models.TextField(blank=True, default="")
    key_image_sop_instance_uids = models.JSONField(default=list, blank=True)
    author = models.CharField(max_length=150)
    signed_by = models.CharField(max_length=150, blank=True, default="")
    signed_at = models.DateTimeField(null=True, blank=True)
    content_sha256 = models.CharField(max_length=64, blank=True, default="")
    # The radiologist's verdicts on the AI findings when the version was signed (docs/ai.md
    # "Verdicts on AI findings"): later re-judging changes the verdicts, never a signed version.
    ai_finding_verdicts = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route_id", "version"], name="consult_report_version")]

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    @property
    def is_addendum(self) -> bool:
        return self.kind == ReportKind.ADDENDUM


class WebhookEndpoint(models.Model):
    """A URL of this tenant's own systems that hears about its consults (HMAC-SHA256 signed)."""

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    description = models.CharField(max_length=200, blank=True, default="")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the delivery log (kept when the endpoint is down, nothing lost)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=60)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=WebhookDeliveryStatus.choices,
                              default=WebhookDeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_log")]


class AttachmentKind(models.TextChoices):
    REFERRAL_LETTER = "referral_letter"
    PRIOR_REPORT = "prior_report"
    OTHER = "other"


class ConsultAttachment(models.Model):
    """A document the clinic sends with its request (kept in the clinic's schema and storage)."""

    route_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=20, choices=AttachmentKind.choices, default=AttachmentKind.OTHER)
    filename = models.CharField(max_length=120)
    content_type = models.CharField(max_length=60)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    object_key = models.CharField(max_length=300)
    uploaded_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)


class FindingVerdict(models.TextChoices):
    ACCEPT = "accept"
    REJECT = "reject"
    EDIT = "edit"


class AIFindingVerdict(models.Model):
    """A hospital radiologist's verdict on one finding of an AI job run in the clinic's archive
    (hospital schema, beside HospitalConsult): the job lives in the clinic, the judgement with the
    reader. One per consult, job and finding (its Tracking UID); judging again replaces it."""

    route_id = models.UUIDField()
    job_id = models.UUIDField()
    tracking_uid = models.CharField(max_length=64)
    finding_number = models.PositiveIntegerField()
    engine_name = models.CharField(max_length=100)
    engine_version = models.CharField(max_length=64)
    verdict = models.CharField(max_length=8, choices=FindingVerdict.choices)
    edited_long_axis_mm = models.FloatField(null=True, blank=True)
    edited_location = models.CharField(max_length=200, blank=True, default="")
    comment = models.TextField(blank=True, default="")
    radiologist = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["route_id", "job_id", "tracking_uid"],
                                               name="consult_ai_finding_one_verdict")]
        indexes = [models.Index(fields=["engine_name", "verdict"])]

    def as_json(self) -> dict[str, Any]:
        return {"job_id": str(self.job_id), "tracking_uid": self.tracking_uid, "finding_number": self.finding_number,
                "engine_name": self.engine_name, "engine_version": self.engine_version, "verdict": self.verdict,
                "edited_long_axis_mm": self.edited_long_axis_mm, "edited_location": self.edited_location,
                "comment": self.comment, "radiologist": self.radiologist, "updated_at": self.updated_at.isoformat()}
