"""Public-schema records: tenants, their domains, plans, and the referral network."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

# Slugs become part of domains and schema names: lowercase letters, digits and single hyphens.
SLUG_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
slug_validator = RegexValidator(SLUG_PATTERN, "Use lowercase letters, digits and single hyphens, starting with a letter.")

# PS3.8 §9.3.2: an AE title is at most 16 characters of the default repertoire, no backslash or
# control characters; leading and trailing spaces are not significant.
AE_TITLE_MAX_LENGTH = 16
AE_TITLE_PATTERN = r"^[\x20-\x5b\x5d-\x7e]*[\x21-\x5b\x5d-\x7e][\x20-\x5b\x5d-\x7e]*$"
ae_title_validator = RegexValidator(AE_TITLE_PATTERN, "Use 1-16 printable ASCII characters, no backslash.")


def default_ae_title_for_slug(slug: str) -> str:
    """A tenant's called AE title unless set otherwise: its slug upper-cased, cut to 16 characters
    (docs/dimse.md)."""
    return slug.upper()[:AE_TITLE_MAX_LENGTH]


def default_time_zone() -> str:
    return str(settings.TIME_ZONE)


def validate_time_zone(name: str) -> None:
    """An IANA zone name (`Asia/Shanghai`): the staff pages show times in it."""
    if name not in zoneinfo.available_timezones():
        raise ValidationError(f"{name!r} is not an IANA time zone name.")


class TenantKind(models.TextChoices):
    CLINIC = "clinic", "Primary-care clinic"
    HOSPITAL = "hospital", "Tertiary hospital"


class Deployment(models.TextChoices):
    PUBLIC_CLOUD = "public_cloud", "Public cloud (shared infrastructure)"
    DEDICATED_CLOUD = "dedicated_cloud", "Dedicated cloud (own bucket and workers)"


class TenantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Plan(models.Model):
    """A SaaS plan; its quotas apply to public-cloud tenants only (see tenants.deployment)."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    storage_bytes_quota = models.BigIntegerField(null=True, blank=True, help_text="None means unlimited.")
    studies_per_month_quota = models.IntegerField(null=True, blank=True)
    ai_jobs_per_month_quota = models.IntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.code


class Tenant(TenantMixin):
    slug = models.CharField(max_length=40, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=TenantKind.choices, blank=True)
    deployment = models.CharField(max_length=20, choices=Deployment.choices, blank=True)
    status = models.CharField(max_length=16, choices=TenantStatus.choices, default=TenantStatus.ACTIVE)
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="tenants")
    # Dedicated-cloud storage overrides; empty means the platform default for the deployment.
    storage_bucket = models.CharField(max_length=63, blank=True)
    storage_endpoint_url = models.URLField(blank=True)
    storage_kms_key_id = models.CharField(max_length=200, blank=True)
    suspended_reason = models.CharField(max_length=300, blank=True)
    # The zone the tenant's staff pages show times in (tenants.middleware.TenantTimeZoneMiddleware).
    time_zone = models.CharField(max_length=64, default=default_time_zone, validators=[validate_time_zone])
    # The AE title modalities call to store into this tenant over DIMSE (docs/dimse.md); provisioning
    # sets it from the slug (default_ae_title_for_slug).
    dimse_ae_title = models.CharField(max_length=AE_TITLE_MAX_LENGTH, unique=True, validators=[ae_title_validator])
    created_at = models.DateTimeField(auto_now_add=True)

    # Provisioning creates the schema explicitly (tenants.services.tenant_provision), inside its
    # own rollback handling, rather than as a side effect of save().
    auto_create_schema = False
    auto_drop_schema = True

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_active(self) -> bool:
        return self.status == TenantStatus.ACTIVE


class Domain(DomainMixin):
    pass


class ReferralLink(models.Model):
    """A clinic may send consult requests to a hospital only through an active link."""

    clinic = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="referral_links_out")
    hospital = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="referral_links_in")
    active = models.BooleanField(default=True)
    # Per-priority turnaround targets in minutes; the consult capability reads them.
    sla_minutes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "hospital"], name="unique_referral_link"),
        ]

    def __str__(self) -> str:
        return f"{self.clinic.slug} -> {self.hospital.slug}"


class OutboxTask(models.Model):
    """The intent to run one Celery task, written in the same transaction as the change it follows.

    One table in the public schema for every tenant (the row names the tenant's schema), so the
    relay finds every pending row with one indexed query instead of one per tenant schema; the
    caller's transaction reaches it through the tenant's search path (`<tenant>, public`).
    See docs/architecture.md, "Data path of a task".
    """

    task_id = models.UUIDField(unique=True, help_text="The Celery task id, the same on every publish of this row.")
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    options = models.JSONField(default=dict, help_text="Celery execution options kept as given (time limits).")
    schema_name = models.CharField(max_length=63, help_text="The tenant schema the task runs in.")
    queue = models.CharField(max_length=200)
    eta = models.DateTimeField(null=True, blank=True, help_text="Earliest run time, for a task given a countdown.")
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(help_text="When the relay may publish it, if it is still not sent.")
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed publish attempts.")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The relay's one query: pending rows due for a publish, oldest first.
            models.Index(fields=["next_attempt_at"], condition=models.Q(sent_at__isnull=True),
                         name="outbox_pending_due_idx"),
            models.Index(fields=["sent_at"], condition=models.Q(sent_at__isnull=False), name="outbox_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name} for {self.schema_name} ({'sent' if self.sent_at else 'pending'})"
