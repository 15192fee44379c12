"""The one record of a consult that both tenants see, in the public schema.

It carries only what routing needs (who sends to whom, which studies, priority, state, SLA, grant
window, timestamps). Each side keeps its own working records in its own schema (apps.consults):
the clinic the request as sent and the report received, the hospital its worklist entry, drafts
and signed report versions.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from tenants.models import Tenant


class Priority(models.TextChoices):
    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"


# Worklist order: stat first.
PRIORITY_RANK = {Priority.STAT: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}


class ConsultState(models.TextChoices):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED_FOR_INFO = "returned_for_info"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ASSIGNED = "assigned"
    IN_READING = "in_reading"
    REPORTED = "reported"
    FINALIZED = "finalized"
    DELIVERED = "delivered"
    AMENDED = "amended"
    CANCELLED = "cancelled"


class ConsultRoute(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="consults_sent")
    hospital = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="consults_received")
    study_instance_uids = models.JSONField(default=list)
    modalities = models.CharField(max_length=64, blank=True, default="")
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.ROUTINE)
    priority_rank = models.PositiveSmallIntegerField(default=PRIORITY_RANK[Priority.ROUTINE])
    state = models.CharField(max_length=20, choices=ConsultState.choices, default=ConsultState.DRAFT)
    # Clinic-side idempotency: a repeated create with the same key returns the first consult.
    idempotency_key = models.CharField(max_length=100, blank=True, default="")
    assigned_to = models.CharField(max_length=150, blank=True, default="")
    claimed_by = models.CharField(max_length=150, blank=True, default="")
    report_version = models.PositiveIntegerField(default=0)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # The hospital's read access to the studies ends here once the consult is closed.
    grant_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The last delivery of the report to the clinic that failed for good, and why (cleared when a
    # retry is asked for or the delivery succeeds): a finalized consult never waits silently.
    delivery_failure = models.CharField(max_length=500, blank=True, default="")
    delivery_failed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "idempotency_key"], condition=~Q(idempotency_key=""),
                name="consult_route_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["hospital", "state", "priority_rank", "sla_due_at"], name="consult_worklist"),
            models.Index(fields=["clinic", "created_at"], name="consult_clinic_list"),
            models.Index(fields=["sla_due_at"], condition=Q(escalated_at__isnull=True), name="consult_sla_open"),
        ]

    def __str__(self) -> str:
        return f"consult {self.id} {self.clinic_id}->{self.hospital_id} {self.state}"
