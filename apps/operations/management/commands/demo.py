"""`manage.py demo`: a ready-to-try platform — demo tenants, a referral link, a user per role, tokens.

Safe to re-run: tenants, the link and users are created only when missing; every run issues a fresh
Bearer token per demo user (earlier tokens stay valid until they expire) and prints them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import get_public_schema_name

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.accounts.services import token_issue, user_create
from apps.audit.services import Actor
from apps.core.errors import DomainError
from tenants.context import tenant_entered
from tenants.models import ReferralLink, Tenant
from tenants.selectors import tenant_by_slug
from tenants.services import referral_link_create, tenant_provision

DEMO_PASSWORD = "imaging-cloud-demo"
DEMO_ACTOR = Actor.system("demo")


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    kind: str
    deployment: str
    domain: str
    plan_code: str | None
    roles: tuple[Role, ...]  # the first one is the tenant's admin, made by provisioning


CLINIC = DemoTenant(
    slug="demo-clinic", name="Demo Primary Care Clinic", kind="clinic", deployment="public_cloud",
    domain="demo-clinic.localhost", plan_code="standard",
    roles=(Role.CLINIC_ADMIN, Role.TECHNOLOGIST, Role.REFERRING_PHYSICIAN),
)
HOSPITAL = DemoTenant(
    slug="demo-hospital", name="Demo Tertiary Hospital", kind="hospital",
    deployment="dedicated_cloud", domain="demo-hospital.localhost", plan_code=None,
    roles=(Role.HOSPITAL_ADMIN, Role.CONSULT_COORDINATOR, Role.RADIOLOGIST),
)
PLATFORM_ROLES = (Role.OPERATOR,)


@dataclass(frozen=True)
class DemoLogin:
    tenant: str
    domain: str
    username: str
    role: str
    token: str


def demo_tenant_ensure(spec: DemoTenant) -> Tenant:
    tenant = tenant_by_slug(spec.slug)
    if tenant is not None:
        return tenant
    provisioned = tenant_provision(
        slug=spec.slug, name=spec.name, kind=spec.kind, deployment=spec.deployment, domain=spec.domain,
        plan_code=spec.plan_code, admin_username=spec.roles[0].value, admin_password=DEMO_PASSWORD, actor=DEMO_ACTOR,
    )
    return provisioned.tenant


def referral_link_ensure(*, clinic: Tenant, hospital: Tenant) -> None:
    if not ReferralLink.objects.filter(clinic=clinic, hospital=hospital, active=True).exists():
        referral_link_create(clinic_slug=clinic.slug, hospital_slug=hospital.slug, actor=DEMO_ACTOR)


def demo_logins_issue(tenant: Tenant, roles: tuple[Role, ...], domain: str) -> list[DemoLogin]:
    """Each role's user (username = role name), created if missing, with a fresh token."""
    logins = []
    with tenant_entered(tenant):
        for role in roles:
            user = User.objects.filter(username=role.value).first()
            if user is None:
                user = user_create(username=role.value, role=role.value, password=DEMO_PASSWORD, actor=DEMO_ACTOR)
            issued = token_issue(user=user, name="demo", actor=DEMO_ACTOR)
            logins.append(DemoLogin(tenant=tenant.slug, domain=domain, username=user.username, role=user.role,
                                    token=issued.secret))
    return logins


def load_sample_studies(tenant: Tenant) -> Any:
    """Load the archive's sample studies (apps/archive/demo_data.py) into the tenant."""
    from apps.archive.demo_data import load_sample_studies as archive_load_sample_studies

    with tenant_entered(tenant):
        return archive_load_sample_studies(tenant=tenant)


def demo_consult_and_film(*, clinic: Tenant, hospital: Tenant, port: int) -> tuple[str, Any] | None:
    """A consult from the clinic's first sample study to the hospital (made once), and a fresh
    patient film link for that study (a new token and code on every run), its URL on `port`."""
    from apps.archive.models import Study
    from apps.consults.services import consult_create
    from apps.films.models import Film
    from apps.films.services import film_link_issue, film_request

    with tenant_entered(clinic):
        study = Study.objects.filter(deleted_at__isnull=True).order_by("created_at", "id").first()
        if study is None:
            return None
        route = consult_create(
            actor=DEMO_ACTOR, requested_by=Role.REFERRING_PHYSICIAN.value, study_instance_uids=[study.study_instance_uid],
            hospital_slug=hospital.slug, clinical_question="Demo consult: please read this study.",
            idempotency_key="demo-consult", submit=True,
        )
        film = Film.objects.filter(study_instance_uid=study.study_instance_uid, requested_by="demo").first()
        if film is None:
            film = film_request(study_instance_uid=study.study_instance_uid, actor=DEMO_ACTOR, requested_by="demo")
        return str(route.pk), film_link_issue(film_id=film.pk, actor=DEMO_ACTOR, created_by="demo",
                                                 served_port=port)


def demo_urls(port: int, platform_domain: str) -> dict[str, str]:
    def url(host: str, path: str) -> str:
        return f"http://{host}:{port}{path}"

    return {
        "platform_api": url(platform_domain, "/api/v1/tenants/"),
        "clinic_me": url(CLINIC.domain, "/api/v1/me/"),
        "hospital_me": url(HOSPITAL.domain, "/api/v1/me/"),
        "api_docs": url(platform_domain, "/api/docs/"),
        "api_schema": url(platform_domain, "/api/schema/"),
        "clinic_dicomweb": url(CLINIC.domain, "/dicomweb"),
        "hospital_dicomweb": url(HOSPITAL.domain, "/dicomweb"),
        "readiness": url(platform_domain, "/readyz"),
        "clinic_pages": url(CLINIC.domain, "/consults/"),
        "hospital_worklist": url(HOSPITAL.domain, "/consults/"),
        "film_page": url(platform_domain, "/film/"),
    }


class Command(BaseCommand):
    help = "Provision the demo tenants, referral link and a user per role (idempotent) and print fresh tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000),
                            help="Port shown in the printed URLs (default: $PORT or 8000).")
        parser.add_argument("--format", choices=["table", "json"], default="table")

    def handle(self, *args: object, **options: Any) -> None:
        try:
            clinic = demo_tenant_ensure(CLINIC)
            hospital = demo_tenant_ensure(HOSPITAL)
            referral_link_ensure(clinic=clinic, hospital=hospital)
            public = Tenant.objects.get(schema_name=get_public_schema_name())
            platform_domain = public.domains.filter(is_primary=True).values_list("domain", flat=True).first()
            logins = (
                demo_logins_issue(clinic, CLINIC.roles, CLINIC.domain)
                + demo_logins_issue(hospital, HOSPITAL.roles, HOSPITAL.domain)
                + demo_logins_issue(public, PLATFORM_ROLES, platform_domain or "localhost")
            )
            samples = {tenant.slug: load_sample_studies(tenant) for tenant in (clinic, hospital)}
            consult_and_film = demo_consult_and_film(clinic=clinic, hospital=hospital, port=options["port"])
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        urls = demo_urls(options["port"], platform_domain or "localhost")
        film_link: dict[str, str] = {}
        if consult_and_film is not None:
            from apps.consults.grants import consult_service_path

            consult_id, issued = consult_and_film
            film_link = {"consult_id": consult_id, "url": issued.url,
                         "access_code": issued.access_code,
                         "dicomweb_root": urls["hospital_dicomweb"].removesuffix("/dicomweb")
                         + consult_service_path(consult_id)}
        if options["format"] == "json":
            self.stdout.write(json.dumps({
                "password": DEMO_PASSWORD, "users": [asdict(login) for login in logins], "urls": urls,
                "sample_studies": {slug: result for slug, result in samples.items() if result is not None},
                "demo_consult_and_film": film_link,
                "dimse_ae_titles": {tenant.slug: tenant.dimse_ae_title for tenant in (clinic, hospital)},
            }, indent=2, default=str))
            return
        self._print_table(logins, urls, samples, film_link)
        self.stdout.write("")
        self.stdout.write("DIMSE called AE titles (docs/dimse.md; register a peer with manage.py dimse_peer_add)")
        for tenant in (clinic, hospital):
            self.stdout.write(f"  {tenant.slug:<24} {tenant.dimse_ae_title}")

    def _print_table(self, logins: list[DemoLogin], urls: dict[str, str], samples: dict[str, Any],
                     film_link: dict[str, str]) -> None:
        write = self.stdout.write
        write(f"Demo users (password for every demo user: {DEMO_PASSWORD})")
        write("")
        write(f"{'tenant':<15} {'user':<21} {'role':<21} token")
        for login in logins:
            write(f"{login.tenant:<15} {login.username:<21} {login.role:<21} {login.token}")
        write("")
        write("URLs")
        write(f"  platform (operator) API  {urls['platform_api']}")
        write(f"  clinic API               {urls['clinic_me']}")
        write(f"  hospital API             {urls['hospital_me']}")
        write(f"  API docs                 {urls['api_docs']}  (on every tenant domain too)")
        write(f"  DICOMweb                 {urls['clinic_dicomweb']}  {urls['hospital_dicomweb']}")
        write(f"  readiness                {urls['readiness']}")
        write(f"  consult pages (sign in)  {urls['clinic_pages']}  {urls['hospital_worklist']}")
        for slug, result in samples.items():
            if result is not None:
                write(f"  sample studies in {slug}: {result}")
        if film_link:
            write(f"  demo consult             {film_link['consult_id']} (submitted to the hospital's worklist)")
            write(f"  its images, once accepted {film_link['dicomweb_root']}  (the hospital's DICOMweb root for it)")
            write(f"  patient film link        {film_link['url']}  access code {film_link['access_code']}")
        clinic_admin = next(login for login in logins if login.role == Role.CLINIC_ADMIN)
        write("")
        write(f"Try: curl -H 'Authorization: Bearer {clinic_admin.token}' {urls['clinic_me']}")
