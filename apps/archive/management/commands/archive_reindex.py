from django.core.management.base import BaseCommand, CommandError

from apps.archive.services import StorageMaintenanceBusy, archive_reindex
from apps.audit.services import Actor
from tenants.context import tenant_entered
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Rebuild a tenant's archive index (studies, series, instances) from its stored instances and "
            "verify the checksums of those already indexed (docs/operations.md, 'Recovery').")

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", required=True, help="Tenant slug.")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None or tenant.slug == "public":
            raise CommandError(f"No tenant {options['tenant']!r}.")
        with tenant_entered(tenant):
            try:
                summary = archive_reindex(actor=Actor.system("archive_reindex"))
            except StorageMaintenanceBusy as error:
                raise CommandError(error.detail) from error
        for key in summary.checksum_mismatches:
            self.stdout.write(f"checksum mismatch {key}")
        for key in summary.unreadable:
            self.stdout.write(f"unreadable {key}")
        for key, reason in summary.refused.items():
            self.stdout.write(f"refused {key} ({reason})")
        self.stdout.write(
            f"scanned {summary.scanned}, already indexed {summary.already_indexed}, restored {summary.restored} "
            f"(in {len(summary.restored_studies)} studies), checksum mismatches {len(summary.checksum_mismatches)}, "
            f"unreadable {len(summary.unreadable)}, duplicate copies {summary.duplicate_copies}, "
            f"refused {len(summary.refused)}"
        )
