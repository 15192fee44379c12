"""Registered DIMSE peers, in the public schema: the listener decides at association time, before
it knows any tenant's schema, whether a calling AE at an address may talk to a tenant (docs/dimse.md)."""

from django.db import models

from tenants.models import AE_TITLE_MAX_LENGTH, Tenant, ae_title_validator


class DimsePeer(models.Model):
    """A modality, PACS or workstation allowed to associate with one tenant: its calling AE title,
    the source address its associations come from, and the port it listens on (for C-MOVE)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="dimse_peers")
    ae_title = models.CharField(max_length=AE_TITLE_MAX_LENGTH, validators=[ae_title_validator])
    host = models.GenericIPAddressField(help_text="The source address associations from this peer come from.")
    port = models.PositiveIntegerField(null=True, blank=True, help_text="Where the peer listens, for C-MOVE.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ae_title", "host"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ae_title", "host"], name="unique_dimse_peer"),
        ]

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host} -> {self.tenant_id}"
