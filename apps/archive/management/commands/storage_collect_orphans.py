from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.archive.services import StorageMaintenanceBusy, orphaned_objects_collect
from apps.audit.services import Actor
from tenants.context import tenant_entered
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Remove a tenant's stored instances and derived images that no index row names, older than "
            "STORAGE_ORPHAN_MIN_AGE_SECONDS (docs/operations.md, 'Recovery').")

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", required=True, help="Tenant slug.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be removed; remove nothing.")
        parser.add_argument("--min-age-seconds", type=int, default=None,
                            help="Safety age (default STORAGE_ORPHAN_MIN_AGE_SECONDS).")
        parser.add_argument("--max-unreferenced-instances", type=int, default=None,
                            help="Remove no instance when more are due (default "
                                 "STORAGE_ORPHAN_MAX_UNREFERENCED_INSTANCES).")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None or tenant.slug == "public":
            raise CommandError(f"No tenant {options['tenant']!r}.")
        min_age = options["min_age_seconds"]
        limit = options["max_unreferenced_instances"]
        with tenant_entered(tenant):
            try:
                report = orphaned_objects_collect(
                    min_age_seconds=settings.STORAGE_ORPHAN_MIN_AGE_SECONDS if min_age is None else min_age,
                    max_unreferenced_instances=(
                        settings.STORAGE_ORPHAN_MAX_UNREFERENCED_INSTANCES if limit is None else limit
                    ),
                    dry_run=options["dry_run"], actor=Actor.system("storage_collect_orphans"),
                )
            except StorageMaintenanceBusy as error:
                raise CommandError(error.detail) from error
        verb = "would remove" if report.dry_run else "removed"
        for key in report.removed_keys:
            self.stdout.write(f"{verb} {key}")
        self.stdout.write(
            f"scanned {report.scanned}, {verb} {report.instances_removed} instances and {report.derived_removed} "
            f"derived images ({report.bytes_removed} bytes), too young {report.too_young}, "
            f"instances withheld {report.instances_withheld}"
        )
        if report.instances_withheld:
            self.stderr.write(
                f"{report.instances_withheld} stored instances have no index row, more than the limit: none was "
                "removed. If the index was lost, run `manage.py archive_reindex` first."
            )
