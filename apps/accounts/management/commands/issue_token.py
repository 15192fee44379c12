from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.accounts.services import token_issue, user_create
from apps.audit.services import Actor
from apps.core.errors import DomainError
from tenants.context import tenant_entered
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Issue a Bearer token for a user of a tenant and print the token alone (creates the user if --role is given)."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--tenant", required=True, help="Tenant slug, or 'public' for platform operators.")
        parser.add_argument("--user", required=True)
        parser.add_argument("--role", help="Create the user with this role if it does not exist.")
        parser.add_argument("--days", type=int, default=None, help="Lifetime in days (default from settings).")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        with tenant_entered(tenant):  # the public tenant's schema is public: platform operators
            actor = Actor.system("issue_token")
            try:
                user = User.objects.filter(username=options["user"]).first()
                if user is None:
                    if not options["role"]:
                        raise CommandError(f"No user {options['user']!r} in {tenant.slug}; pass --role to create one.")
                    user = user_create(username=options["user"], role=options["role"], actor=actor)
                elif options["role"] and user.role != options["role"]:
                    raise CommandError(f"User {user.username} has role {user.role}, not {options['role']}.")
                lifetime = timedelta(days=options["days"]) if options["days"] else None
                issued = token_issue(user=user, name=options["name"], lifetime=lifetime, actor=actor)
            except DomainError as error:
                raise CommandError(f"{error.code}: {error.detail}") from error
        self.stdout.write(issued.secret)
