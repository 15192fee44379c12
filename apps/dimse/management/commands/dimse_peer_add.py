from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import Actor
from apps.core.errors import DomainError
from apps.dimse.services import dimse_peer_add
from tenants.selectors import tenant_by_slug


class Command(BaseCommand):
    help = "Register a DIMSE peer (calling AE title at a source address) for a tenant (docs/dimse.md)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--ae", required=True, help="The peer's calling AE title.")
        parser.add_argument("--host", required=True, help="The IP address its associations come from.")
        parser.add_argument("--port", type=int, default=None, help="Where the peer listens (for C-MOVE).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_by_slug(options["tenant"])
            if tenant is None:
                raise CommandError(f"No tenant {options['tenant']!r}.")
            peer = dimse_peer_add(tenant=tenant, ae_title=options["ae"], host=options["host"], port=options["port"],
                                  actor=Actor.system("dimse_peer_add"))
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        self.stdout.write(f"Registered {peer.ae_title} at {peer.host} for {tenant.slug} (AE title {tenant.dimse_ae_title})")
