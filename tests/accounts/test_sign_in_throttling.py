"""Sign-in throttling (django-axes): an account is locked after the failure limit from any address,
an address after the failure limit for any account; the answer is a clear 429; failures are counted
in the tenant's own schema.

Each test signs in from its own loopback source addresses (127.0.0.x) to a throwaway tenant, so
counts start at zero and no other test is locked out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from requests.adapters import HTTPAdapter

from apps.accounts.services import user_create
from tests.support.platform import TenantHttp, unique_suffix
from tests.support.tenancy import ADMIN_PASSWORD, discard_tenant, provision_throwaway

FAILURE_LIMIT = 3
_next_address = iter(range(2, 255))


class SourceAddressAdapter(HTTPAdapter):
    """Connects from a chosen local address, so the server sees a different client address."""

    def __init__(self, source_address: str) -> None:
        self.source_address = source_address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source_address, 0)
        super().init_poolmanager(*args, **kwargs)


def fresh_address() -> str:
    return f"127.0.0.{next(_next_address)}"


@pytest.fixture(autouse=True)
def low_failure_limit(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = FAILURE_LIMIT


@pytest.fixture(scope="module")
def tenant(platform: Any) -> Iterator[str]:
    result = provision_throwaway(platform, key=f"throttle-{unique_suffix()}")
    key = next(key for key, value in platform.tenants.items() if value.slug == result.tenant.slug)
    yield key
    discard_tenant(platform, result.tenant.slug)


def new_user(platform: Any, tenant: str) -> str:
    username = f"staff-{unique_suffix()}"
    with platform.schema(tenant):
        user_create(username=username, role="technologist", password=ADMIN_PASSWORD)
    return username


def sign_in(platform: Any, tenant: str, *, username: str, password: str, source: str,
            accept: str = "text/html") -> Any:
    client = TenantHttp(platform.base_url, platform.host(tenant), None)
    client.mount("http://", SourceAddressAdapter(source))
    page = client.get("/accounts/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    answer = client.post("/accounts/login/", allow_redirects=False, headers={"Accept": accept}, data={
        "username": username, "password": password, "csrfmiddlewaretoken": csrf.group(1)})
    answer.had_session = "sessionid" in client.cookies
    return answer


def test_an_account_is_locked_after_the_failure_limit_from_any_address(platform, tenant):
    username = new_user(platform, tenant)
    statuses = [sign_in(platform, tenant, username=username, password="wrong-guess", source=fresh_address()).status_code
                for _ in range(FAILURE_LIMIT)]
    # The failure that reaches the limit is already answered with the lockout.
    assert statuses == [200] * (FAILURE_LIMIT - 1) + [429]
    locked = sign_in(platform, tenant, username=username, password=ADMIN_PASSWORD, source=fresh_address())
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this user name or from this address." in locked.text
    assert locked.had_session is False


def test_an_address_is_locked_after_the_failure_limit_for_any_account(platform, tenant):
    address, username = fresh_address(), new_user(platform, tenant)
    for _ in range(FAILURE_LIMIT):
        sign_in(platform, tenant, username=f"guess-{unique_suffix()}", password="wrong-guess", source=address)
    locked = sign_in(platform, tenant, username=username, password=ADMIN_PASSWORD, source=address)
    assert (locked.status_code, locked.had_session) == (429, False)
    elsewhere = sign_in(platform, tenant, username=username, password=ADMIN_PASSWORD, source=fresh_address())
    assert (elsewhere.status_code, elsewhere.headers["Location"], elsewhere.had_session) == (302, "/", True)


def test_failures_below_the_limit_do_not_lock(platform, tenant):
    username = new_user(platform, tenant)
    for _ in range(FAILURE_LIMIT - 1):
        sign_in(platform, tenant, username=username, password="wrong-guess", source=fresh_address())
    assert sign_in(platform, tenant, username=username, password=ADMIN_PASSWORD, source=fresh_address()).status_code == 302


def test_a_client_asking_for_json_gets_429_with_a_code(platform, tenant):
    username = new_user(platform, tenant)
    for _ in range(FAILURE_LIMIT):
        sign_in(platform, tenant, username=username, password="wrong-guess", source=fresh_address())
    locked = sign_in(platform, tenant, username=username, password=ADMIN_PASSWORD, source=fresh_address(),
                     accept="application/json")
    assert locked.status_code == 429
    assert locked.json() == {"code": "sign_in_locked", "detail": (
        "Too many failed sign-ins for this user name or from this address. Try again in 15 minutes.")}


def test_a_lockout_ends_after_the_cool_off_window(platform, tenant):
    from axes.models import AccessAttempt
    from django.utils import timezone

    username = new_user(platform, tenant)
    for _ in range(FAILURE_LIMIT):
        sign_in(platform, tenant, username=username, password="wrong-guess", source=fresh_address())
    with platform.schema(tenant):
        AccessAttempt.objects.filter(username=username).update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(platform, tenant, username=username, password=ADMIN_PASSWORD, source=fresh_address()).status_code == 302


def test_a_lockout_in_one_tenant_does_not_lock_the_same_user_name_in_another(platform, tenant):
    username = new_user(platform, tenant)
    with platform.schema("clinic_c"):
        user_create(username=username, role="technologist", password=ADMIN_PASSWORD)
    for _ in range(FAILURE_LIMIT):
        sign_in(platform, tenant, username=username, password="wrong-guess", source=fresh_address())
    assert sign_in(platform, tenant, username=username, password=ADMIN_PASSWORD, source=fresh_address()).status_code == 429
    other = sign_in(platform, "clinic_c", username=username, password=ADMIN_PASSWORD, source=fresh_address())
    assert other.status_code == 302
    from axes.models import AccessAttempt

    with platform.schema(tenant):
        # The refused sign-in with the right password counts as one more failure.
        assert AccessAttempt.objects.filter(username=username).count() == FAILURE_LIMIT + 1
    with platform.schema("clinic_c"):
        assert AccessAttempt.objects.filter(username=username).count() == 0


def test_operator_sign_in_failures_are_counted_in_the_public_schema(platform):
    from axes.models import AccessAttempt

    from apps.accounts.models import User

    username = f"operator-{unique_suffix()}"
    with platform.schema():
        user_create(username=username, role="operator", password=ADMIN_PASSWORD)
    platform.domains["platform"] = platform.operator_http().host
    try:
        statuses = [sign_in(platform, "platform", username=username, password="wrong-guess",
                            source=fresh_address()).status_code for _ in range(FAILURE_LIMIT)]
        assert statuses == [200] * (FAILURE_LIMIT - 1) + [429]
        with platform.schema():
            assert AccessAttempt.objects.filter(username=username).count() == FAILURE_LIMIT
    finally:
        platform.domains.pop("platform")
        with platform.schema():
            # Deactivated rather than deleted: a delete cascades to tenant-only tables absent here.
            User.objects.filter(username=username).update(is_active=False)
            AccessAttempt.objects.filter(username=username).delete()
