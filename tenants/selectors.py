from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from tenants.models import ReferralLink, Tenant


def tenants_list() -> QuerySet[Tenant]:
    return Tenant.objects.exclude(schema_name=get_public_schema_name()).select_related("plan").prefetch_related("domains")


def tenant_by_slug(slug: str) -> Tenant | None:
    return tenants_list().filter(slug=slug).first()


def referral_links_list(*, clinic_slug: str | None = None, hospital_slug: str | None = None) -> QuerySet[ReferralLink]:
    links = ReferralLink.objects.select_related("clinic", "hospital")
    if clinic_slug:
        links = links.filter(clinic__slug=clinic_slug)
    if hospital_slug:
        links = links.filter(hospital__slug=hospital_slug)
    return links


def hospitals_linked_to_clinic(clinic: Tenant) -> QuerySet[Tenant]:
    return Tenant.objects.filter(referral_links_in__clinic=clinic, referral_links_in__active=True)
