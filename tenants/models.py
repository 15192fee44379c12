"""Public-schema records: tenants, their domains, plans, and the referral network."""

from django.core.validators import RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

# Slugs become part of domains and schema names: lowercase letters, digits and single hyphens.
SLUG_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
slug_validator = RegexValidator(SLUG_PATTERN, "Use lowercase letters, digits and single hyphens, starting with a letter.")


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
