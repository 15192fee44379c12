"""Browser and bulk uploads: a session collects files (DICOM or zip), then ingest workers unpack them.

Progress is kept in these rows, updated as each instance is ingested, so a client can poll it
while the work runs and a restarted worker resumes where the last one stopped.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class UploadSessionStatus(models.TextChoices):
    OPEN = "open", "Open: receiving files"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired: no file received for too long"


class UploadFileStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused"


class UploadItemStatus(models.TextChoices):
    STORED = "stored", "Stored"
    DUPLICATE = "duplicate", "Already stored"
    FAILED = "failed", "Failed"


class UploadSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="upload_sessions")
    idempotency_key = models.CharField(max_length=200, blank=True)
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=UploadSessionStatus.choices, default=UploadSessionStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Opened or last received a file: an open session idle for UPLOAD_SESSION_IDLE_EXPIRY_SECONDS
    # is expired and its staged bytes deleted (apps.uploads.services.upload_sessions_expire).
    last_activity_at = models.DateTimeField(default=timezone.now)
    files_received = models.IntegerField(default=0)
    bytes_received = models.BigIntegerField(default=0)
    files_done = models.IntegerField(default=0)
    items_stored = models.IntegerField(default=0)
    items_duplicate = models.IntegerField(default=0)
    items_failed = models.IntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["last_activity_at"], condition=models.Q(status="open"), name="upload_session_idle"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="upload_session_idempotency",
            )
        ]


class UploadFile(models.Model):
    session = models.ForeignKey(UploadSession, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    staging_key = models.CharField(max_length=300)
    size = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=UploadFileStatus.choices, default=UploadFileStatus.RECEIVED)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class UploadItem(models.Model):
    """One DICOM object found in an uploaded file (the file itself, or a member of a zip)."""

    session = models.ForeignKey(UploadSession, on_delete=models.CASCADE, related_name="items")
    upload_file = models.ForeignKey(UploadFile, on_delete=models.CASCADE, related_name="items")
    member_name = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=UploadItemStatus.choices)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_detail = models.CharField(max_length=500, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["upload_file", "member_name"], name="upload_item_once_per_member"),
        ]


class UploadTransferStatus(models.TextChoices):
    RECEIVING = "receiving", "Receiving bytes"
    RECEIVED = "received", "Received: handed to the session as a file"
    REFUSED = "refused", "Refused when complete"


class UploadTransfer(models.Model):
    """One file arriving in pieces over the tus protocol (docs/uploads.md): the server's offset is
    kept here, each piece is its own staging object (listed in `part_keys`, in order), and once the
    last byte arrives the pieces become one UploadFile of the session."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(UploadSession, on_delete=models.CASCADE, related_name="transfers")
    name = models.CharField(max_length=255)
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    part_keys = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=UploadTransferStatus.choices, default=UploadTransferStatus.RECEIVING)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    upload_file = models.OneToOneField(UploadFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="transfer")
    # Set by the request assembling the pieces, so a second request does not assemble them again.
    completing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
