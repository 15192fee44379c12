"""Patient film links, in the public schema: an opaque token resolves to its tenant and film.

Only hashes are stored: the token (SHA-256, looked up by equality) and the access code (Django's
password hasher). The tenant-side film and its access history live in the tenant's schema.
"""

from __future__ import annotations

from django.db import models

from tenants.models import Tenant


class FilmLink(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="film_links")
    film_id = models.BigIntegerField()
    code_hash = models.CharField(max_length=200)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Wrong codes since the last lockout or right code; FILM_LINK_MAX_ATTEMPTS of them lock the link.
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Lockouts since the last right code: each doubles the next lock, the FILM_LINK_MAX_LOCKOUTS-th is for good.
    lockout_count = models.PositiveIntegerField(default=0)
    locked_permanently_at = models.DateTimeField(null=True, blank=True)
    last_opened_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "film_id"], name="film_link_by_film")]


class FilmCodeAttempt(models.Model):
    """Wrong access codes per client address, across every link: enough of them slow that address's
    answers down (never refuse them, since many patients can share one address behind a proxy)."""

    client_ip = models.GenericIPAddressField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["client_ip", "created_at"], name="film_code_attempts_by_ip")]
