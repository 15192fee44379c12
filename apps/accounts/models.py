"""Users and API tokens. Both live in each tenant's schema (and operators in the public schema)."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from apps.accounts.roles import ROLE_CHOICES


class User(AbstractUser):
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    display_name = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.username


class ApiToken(models.Model):
    """A Bearer token. Only its SHA-256 is stored; the secret is shown once, when issued."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # When set, the token reaches only DICOMweb under /dicomweb/studies/<this study>/ (an AI
    # vendor's job token): no other study, no search across studies, no REST API.
    study_instance_uid_scope = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
