from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import Actor
from apps.core.errors import DomainError
from apps.dimse.selectors import peer_registered
from apps.dimse.services import dimse_peer_remove
from tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = "Remove a tenant's DIMSE peer: its next association is rejected (docs/dimse.md)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--ae", required=True, help="The peer's calling AE title.")
        parser.add_argument("--host", required=True, help="The IP address it was registered with.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_by_slug(options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.")
            peer = peer_registered(tenant=tenant, ae_title=options["ae"], host=options["host"])
            dimse_peer_remove(tenant=tenant, peer_id=peer.pk, actor=Actor.system("dimse_peer_remove"))
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        self.stdout.write(f"Removed {peer.ae_title} at {peer.host} from {tenant.slug}")
