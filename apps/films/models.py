"""A patient's cloud film: key images composed into sheets, the report, and how it was made."""

from __future__ import annotations

from django.db import models


class FilmState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


class Film(models.Model):
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    layout = models.CharField(max_length=8, default="2x2")
    key_image_sop_instance_uids = models.JSONField(default=list, blank=True)
    # The consult whose delivered report made this film (clinic-side ClinicConsult id), if any.
    consult_id = models.BigIntegerField(null=True, blank=True, unique=True)
    report = models.JSONField(null=True, blank=True)
    report_pdf_key = models.CharField(max_length=300, blank=True, default="")
    state = models.CharField(max_length=10, choices=FilmState.choices, default=FilmState.QUEUED)
    sheet_keys = models.JSONField(default=list, blank=True)
    sheets_pdf_key = models.CharField(max_length=300, blank=True, default="")
    image_count = models.PositiveIntegerField(default=0)
    error_detail = models.CharField(max_length=500, blank=True, default="")
    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
