"""The isolation invariant (docs/architecture.md): nothing of one tenant is read or changed through another.

Every endpoint a tenant domain serves is listed once in TENANT_ENDPOINTS, and every operator route in
OPERATOR_ENDPOINTS; each test below runs over the whole table. A new capability appends its endpoints
here (with `{placeholders}` naming objects of the victim tenant, see `VictimObjects`).

The attacker is a freshly provisioned clinic (`home`), so the victim's object IDs are beyond
anything the attacker's own schema holds: a guessed ID can only reach the victim's object, never a
same-numbered object of the attacker's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from apps.accounts.models import ApiToken, User
from apps.audit.actions import AuditAction
from apps.audit.models import AuditEvent
from tests.support.platform import unique_suffix
from tests.support.tenancy import (
    ADMIN_PASSWORD,
    discard_tenant,
    http_on,
    provision_throwaway,
    session_login,
)


@dataclass(frozen=True)
class Endpoint:
    family: str
    method: str
    path: str
    json: dict[str, Any] | None = None

    @property
    def names_an_object(self) -> bool:
        return "{" in self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


STUDY = "/dicomweb/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{instance}"

# Every endpoint served on a tenant's domain. Append new ones here.
TENANT_ENDPOINTS = [
    Endpoint("accounts", "GET", "/api/v1/me/"),
    Endpoint("accounts", "GET", "/api/v1/users/"),
    Endpoint("accounts", "POST", "/api/v1/users/", {"username": "intruder", "role": "clinic_admin"}),
    Endpoint("accounts", "GET", "/api/v1/users/{user}/"),
    Endpoint("accounts", "PATCH", "/api/v1/users/{user}/", {"role": "clinic_admin"}),
    Endpoint("accounts", "PATCH", "/api/v1/users/{user}/", {"is_active": False}),
    Endpoint("accounts", "GET", "/api/v1/tokens/"),
    Endpoint("accounts", "POST", "/api/v1/tokens/", {"name": "intruder"}),
    Endpoint("accounts", "DELETE", "/api/v1/tokens/{token}/"),
    Endpoint("audit", "GET", "/api/v1/audit-events/"),
    Endpoint("uploads", "GET", "/api/v1/uploads/"),
    Endpoint("uploads", "POST", "/api/v1/uploads/", {"label": "intruder"}),
    Endpoint("uploads", "GET", "/api/v1/uploads/{upload}/"),
    Endpoint("uploads", "DELETE", "/api/v1/uploads/{upload}/"),
    Endpoint("uploads", "GET", "/api/v1/uploads/{upload}/files/"),
    Endpoint("uploads", "POST", "/api/v1/uploads/{upload}/files/"),
    Endpoint("uploads", "POST", "/api/v1/uploads/{upload}/finish/"),
    Endpoint("uploads", "GET", "/api/v1/uploads/{upload}/items/"),
    Endpoint("dicomweb", "GET", "/dicomweb/studies"),
    Endpoint("dicomweb", "POST", "/dicomweb/studies"),
    Endpoint("dicomweb", "GET", "/dicomweb/series"),
    Endpoint("dicomweb", "GET", "/dicomweb/instances"),
    Endpoint("dicomweb", "GET", STUDY),
    Endpoint("dicomweb", "DELETE", STUDY),
    Endpoint("dicomweb", "GET", STUDY + "/metadata"),
    Endpoint("dicomweb", "GET", STUDY + "/rendered"),
    Endpoint("dicomweb", "GET", STUDY + "/thumbnail"),
    Endpoint("dicomweb", "GET", STUDY + "/series"),
    Endpoint("dicomweb", "GET", STUDY + "/instances"),
    Endpoint("dicomweb", "GET", SERIES),
    Endpoint("dicomweb", "DELETE", SERIES),
    Endpoint("dicomweb", "GET", SERIES + "/metadata"),
    Endpoint("dicomweb", "GET", SERIES + "/rendered"),
    Endpoint("dicomweb", "GET", SERIES + "/thumbnail"),
    Endpoint("dicomweb", "GET", SERIES + "/instances"),
    Endpoint("dicomweb", "GET", INSTANCE),
    Endpoint("dicomweb", "GET", INSTANCE + "/metadata"),
    Endpoint("dicomweb", "GET", INSTANCE + "/rendered"),
    Endpoint("dicomweb", "GET", INSTANCE + "/thumbnail"),
    Endpoint("dicomweb", "GET", INSTANCE + "/bulkdata/7FE00010"),
    Endpoint("dicomweb", "GET", INSTANCE + "/frames/1"),
    Endpoint("dicomweb", "GET", INSTANCE + "/frames/1/rendered"),
    Endpoint("dicomweb", "GET", INSTANCE + "/frames/1/thumbnail"),
]

# The consult-scoped root (docs/consults.md) serves the same GET resources for one consult; on any
# tenant but the consult's hospital it answers 404 before searching anything, searches included.
CONSULT_ROOT = "/consults/{consult}/dicomweb"
CONSULT_ROOT_ENDPOINTS = [
    Endpoint("consult-dicomweb", endpoint.method, CONSULT_ROOT + endpoint.path.removeprefix("/dicomweb"))
    for endpoint in TENANT_ENDPOINTS if endpoint.family == "dicomweb" and endpoint.method == "GET"
]
TENANT_ENDPOINTS += CONSULT_ROOT_ENDPOINTS

# Every operator route of the platform domain. Append new ones here.
OPERATOR_ENDPOINTS = [
    Endpoint("tenants", "GET", "/api/v1/tenants/"),
    Endpoint("tenants", "POST", "/api/v1/tenants/", {"slug": "intruder", "name": "Intruder", "kind": "clinic"}),
    Endpoint("tenants", "GET", "/api/v1/tenants/{victim_slug}/"),
    Endpoint("tenants", "DELETE", "/api/v1/tenants/{victim_slug}/"),
    Endpoint("tenants", "POST", "/api/v1/tenants/{victim_slug}/suspend/", {"reason": "intruder"}),
    Endpoint("tenants", "POST", "/api/v1/tenants/{victim_slug}/activate/"),
    Endpoint("referrals", "GET", "/api/v1/referral-links/"),
    Endpoint("referrals", "POST", "/api/v1/referral-links/", {"clinic": "test-clinic-a", "hospital": "test-hospital-b"}),
    Endpoint("referrals", "POST", "/api/v1/referral-links/{link}/deactivate/"),
]

GUESSABLE = [endpoint for endpoint in TENANT_ENDPOINTS if endpoint.names_an_object]


def _ids(endpoints: list[Endpoint]) -> list[str]:
    return [str(endpoint) for endpoint in endpoints]


@dataclass(frozen=True)
class VictimObjects:
    """Objects of the victim tenant (clinic_a) that the attacker aims at, by their real IDs."""

    user: int
    user_role: str
    token: int
    token_secret: str
    audit_event: int
    upload: str
    study: str
    series: str
    instance: str
    victim_slug: str
    link: int
    consult: str

    def fill(self, path: str) -> str:
        return path.format(**self.__dict__)


@pytest.fixture(scope="module")
def home(platform):
    """The attacker's own clinic, with its admin's token and an open session."""
    from apps.accounts.services import token_issue

    result = provision_throwaway(platform, kind="clinic", key="home")
    with platform.schema("home"):
        platform.tokens[("home", "clinic_admin")] = token_issue(user=User.objects.get(username="admin")).secret
    yield result
    discard_tenant(platform, result.tenant.slug)


@pytest.fixture(scope="module")
def victim(platform) -> VictimObjects:
    """A user, a token, an audit event, an upload session, a stored study and a consult accepted by
    hospital_b about it, in clinic_a."""
    from apps.accounts.services import token_issue, user_create
    from apps.audit.services import audit_record
    from tenants.models import ReferralLink
    from tests.consults.support import act, consult_request
    from tests.support.dicomweb import ct_study, stow

    with platform.schema("clinic_a"):
        user = user_create(username=f"victim-{unique_suffix()}", role="technologist")
        issued = token_issue(user=user, name="victim")
        event_id = audit_record(action=AuditAction.WORKER_PROBE, object_type="probe", object_id=unique_suffix())
    upload = platform.http("clinic_a", "clinic_admin").post("/api/v1/uploads/", json={"label": "victim"})
    assert upload.status_code == 201, upload.text
    study = ct_study(slices=1, size=16)
    stored = stow(platform.http("clinic_a", "technologist"), study.files)
    assert stored.status_code == 200, stored.text
    consult = consult_request(platform, study).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult, "accept").status_code == 200
    with platform.schema():
        link = ReferralLink.objects.get(clinic__slug="test-clinic-a", hospital__slug="test-hospital-b")
    return VictimObjects(
        user=user.pk, user_role=user.role, token=issued.token.pk, token_secret=issued.secret, audit_event=event_id,
        upload=upload.json()["id"], study=study.study_instance_uid, series=study.series_instance_uids[0],
        instance=study.sop_instance_uids[0], victim_slug="test-clinic-a", link=link.pk, consult=consult,
    )


def _send(client, endpoint: Endpoint, victim: VictimObjects):
    return client.request(endpoint.method, victim.fill(endpoint.path), json=endpoint.json)


def _assert_victim_unchanged(platform, victim: VictimObjects) -> None:
    with platform.schema("clinic_a"):
        user = User.objects.get(pk=victim.user)
        assert (user.role, user.is_active) == (victim.user_role, True)
        assert ApiToken.objects.get(pk=victim.token).revoked_at is None
        assert AuditEvent.objects.filter(pk=victim.audit_event).exists()
        assert not User.objects.filter(username="intruder").exists()
    upload = platform.http("clinic_a", "clinic_admin").get(f"/api/v1/uploads/{victim.upload}/")
    assert upload.json()["status"] == "open"
    study = platform.http("clinic_a", "technologist").get(f"/dicomweb/studies/{victim.study}/metadata")
    assert study.status_code == 200


# --- another tenant's credentials on the victim's domain --------------------------------------------------


@pytest.mark.parametrize("endpoint", TENANT_ENDPOINTS, ids=_ids(TENANT_ENDPOINTS))
def test_a_token_of_another_tenant_is_refused_on_every_endpoint(platform, home, victim, endpoint):
    attacker = platform.http("clinic_a", token=platform.tokens[("home", "clinic_admin")])
    answer = _send(attacker, endpoint, victim)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("endpoint", TENANT_ENDPOINTS, ids=_ids(TENANT_ENDPOINTS))
def test_a_hospitals_token_is_refused_on_a_clinics_every_endpoint(platform, victim, endpoint):
    attacker = platform.http("clinic_a", token=platform.tokens[("hospital_b", "hospital_admin")])
    answer = _send(attacker, endpoint, victim)
    assert answer.status_code == 401, answer.text


@pytest.fixture(scope="module")
def home_session(platform, home):
    client, answer = session_login(platform, home.domain, username="admin", password=ADMIN_PASSWORD)
    assert answer.status_code == 302
    return client


@pytest.mark.parametrize("endpoint", TENANT_ENDPOINTS, ids=_ids(TENANT_ENDPOINTS))
def test_a_session_of_another_tenant_is_refused_on_every_endpoint(platform, home_session, victim, endpoint):
    carried = http_on(platform, platform.host("clinic_a"))
    carried.cookies.update(home_session.cookies)
    headers = {"X-CSRFToken": home_session.cookies["csrftoken"]}
    answer = carried.request(endpoint.method, victim.fill(endpoint.path), json=endpoint.json, headers=headers)
    assert answer.status_code == 401, answer.text


def test_the_victim_is_unchanged_after_the_foreign_credentials(platform, victim):
    _assert_victim_unchanged(platform, victim)


# --- guessing the victim's IDs on one's own domain ---------------------------------------------------------


@pytest.mark.parametrize("endpoint", GUESSABLE, ids=_ids(GUESSABLE))
def test_guessing_another_tenants_ids_on_ones_own_domain_finds_nothing(platform, home, victim, endpoint):
    with platform.schema("home"):
        assert not User.objects.filter(pk=victim.user).exists()
        assert not ApiToken.objects.filter(pk=victim.token).exists()
    answer = _send(platform.http("home", "clinic_admin"), endpoint, victim)
    # Searches scoped to a guessed study or series answer 404 like every other guessed object.
    assert answer.status_code == 404, answer.text
    assert set(answer.json()) == {"code", "detail"}


@pytest.mark.parametrize("path", ["/api/v1/users/", "/api/v1/tokens/", "/api/v1/audit-events/", "/api/v1/uploads/"])
def test_listing_on_ones_own_domain_shows_none_of_another_tenants_objects(platform, home, victim, path):
    answer = platform.http("home", "clinic_admin").get(path, params={"limit": 1000})
    assert answer.status_code == 200
    ids = {str(item["id"]) for item in answer.json()["results"]}
    victims = {"/api/v1/users/": victim.user, "/api/v1/tokens/": victim.token,
               "/api/v1/audit-events/": victim.audit_event, "/api/v1/uploads/": victim.upload}
    assert str(victims[path]) not in ids
    assert "victim" not in answer.text


def test_searching_the_archive_on_ones_own_domain_finds_none_of_another_tenants_studies(platform, home, victim):
    answer = platform.http("home", "clinic_admin").get("/dicomweb/studies", params={"StudyInstanceUID": victim.study})
    assert answer.status_code in {200, 204}
    assert victim.study not in answer.text


def test_the_victim_is_unchanged_after_the_guessing(platform, victim):
    _assert_victim_unchanged(platform, victim)


# --- the operator API and tenant domains -------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", OPERATOR_ENDPOINTS, ids=_ids(OPERATOR_ENDPOINTS))
def test_a_tenant_token_is_refused_on_the_operator_api(platform, victim, endpoint):
    tenant_admin = platform.operator_http(token=platform.tokens[("clinic_a", "clinic_admin")])
    answer = _send(tenant_admin, endpoint, victim)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("endpoint", OPERATOR_ENDPOINTS, ids=_ids(OPERATOR_ENDPOINTS))
def test_operator_routes_are_not_served_on_a_tenant_domain(platform, victim, endpoint):
    tenant_admin = platform.http("clinic_a", "clinic_admin")
    answer = _send(tenant_admin, endpoint, victim)
    assert answer.status_code == 404, answer.text


@pytest.mark.parametrize("endpoint", TENANT_ENDPOINTS[:10], ids=_ids(TENANT_ENDPOINTS[:10]))
def test_the_operator_token_is_refused_on_a_tenant_domain(platform, victim, endpoint):
    answer = _send(platform.http("clinic_a", token=platform.operator_token), endpoint, victim)
    assert answer.status_code == 401, answer.text


def test_the_tenants_are_unchanged_after_the_operator_api_attempts(platform, victim):
    from tenants.models import ReferralLink, Tenant

    with platform.schema():
        assert Tenant.objects.get(slug="test-clinic-a").status == "active"
        assert ReferralLink.objects.get(pk=victim.link).active is True
        assert not Tenant.objects.filter(slug="intruder").exists()
    _assert_victim_unchanged(platform, victim)


# --- a suspended tenant ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suspended(platform):
    """A suspended clinic whose admin holds a token that would otherwise be valid."""
    from apps.accounts.services import token_issue
    from tenants.services import tenant_suspend

    result = provision_throwaway(platform, kind="clinic", key="iso-suspended")
    with platform.schema("iso-suspended"):
        platform.tokens[("iso-suspended", "clinic_admin")] = token_issue(user=User.objects.get(username="admin")).secret
    with platform.schema():
        tenant_suspend(slug=result.tenant.slug, reason="isolation test")
    yield result
    discard_tenant(platform, result.tenant.slug)


@pytest.mark.parametrize("endpoint", TENANT_ENDPOINTS, ids=_ids(TENANT_ENDPOINTS))
def test_a_suspended_tenant_refuses_every_endpoint(platform, suspended, victim, endpoint):
    answer = _send(platform.http("iso-suspended", "clinic_admin"), endpoint, victim)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "tenant_suspended"
