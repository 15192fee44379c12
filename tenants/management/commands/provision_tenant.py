from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import Actor
from apps.core.errors import DomainError
from tenants.models import Deployment, TenantKind
from tenants.services import tenant_provision


class Command(BaseCommand):
    help = "Provision a clinic or hospital tenant: schema, domain, storage and a first admin user."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--kind", required=True, choices=TenantKind.values)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--domain")
        parser.add_argument("--deployment", choices=Deployment.values)
        parser.add_argument("--plan")
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        try:
            result = tenant_provision(
                slug=options["slug"], name=options["name"], kind=options["kind"],
                deployment=options["deployment"], domain=options["domain"], plan_code=options["plan"],
                admin_username=options["admin_username"], admin_password=options["admin_password"],
                actor=Actor.system("provision_tenant"),
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        tenant = result.tenant
        self.stdout.write(
            f"Provisioned {tenant.kind} {tenant.slug} ({tenant.deployment}) on {result.domain}\n"
            f"admin user: {result.admin_username}  password: {result.admin_password}"
        )
