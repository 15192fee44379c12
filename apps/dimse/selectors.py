"""Reads of the registered DIMSE peers (public schema)."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.dimse.addressing import valid_peer
from apps.dimse.models import DimsePeer
from tenants.models import Tenant


def peers_of(*, tenant: Tenant) -> QuerySet[DimsePeer]:
    return DimsePeer.objects.filter(tenant=tenant).order_by("ae_title", "host")


def peer_registered(*, tenant: Tenant, ae_title: str, host: str) -> DimsePeer:
    """The tenant's peer registered with that AE title and address."""
    title, address = valid_peer(ae_title=ae_title, host=host, port=None)
    peer = peers_of(tenant=tenant).filter(ae_title=title, host=address).first()
    if peer is None:
        raise NotFound(f"No DIMSE peer {title!r} at {address}.", code="dimse_peer_not_found")
    return peer

