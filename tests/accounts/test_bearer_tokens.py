"""Bearer tokens: accepted while valid, refused (401 {code, detail}) when expired, revoked, malformed,
unknown or presented on another tenant's domain; stored only as a hash."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection

from apps.accounts.models import ApiToken, User
from apps.accounts.services import token_issue, token_revoke, user_create, user_deactivate
from tests.support.platform import unique_suffix

INVALID_TOKEN = {"code": "authentication_failed", "detail": "Invalid, expired or revoked token for this tenant."}
MALFORMED = {"code": "authentication_failed", "detail": "Authorization header must be 'Bearer <token>'."}


def _user(platform, tenant_key: str = "clinic_a", role: str = "technologist") -> User:
    with platform.schema(tenant_key):
        return user_create(username=f"token-user-{unique_suffix()}", role=role)


def _issue(platform, user: User, tenant_key: str = "clinic_a", **kwargs) -> str:
    with platform.schema(tenant_key):
        return token_issue(user=user, name="test", **kwargs).secret


def _me(platform, token: str, tenant_key: str = "clinic_a"):
    return platform.http(tenant_key, token=token).get("/api/v1/me/")


def test_a_valid_token_identifies_its_user_and_role(platform):
    user = _user(platform)
    answer = _me(platform, _issue(platform, user))
    assert answer.status_code == 200
    assert (answer.json()["username"], answer.json()["role"]) == (user.username, "technologist")


def test_an_expired_token_is_refused(platform):
    secret = _issue(platform, _user(platform), lifetime=timedelta(seconds=-1))
    answer = _me(platform, secret)
    assert answer.status_code == 401
    assert answer.json() == INVALID_TOKEN
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="imaging-cloud"'


def test_a_revoked_token_is_refused(platform):
    user = _user(platform)
    secret = _issue(platform, user)
    assert _me(platform, secret).status_code == 200
    with platform.schema("clinic_a"):
        token_revoke(token_id=ApiToken.objects.get(user=user).pk)
    answer = _me(platform, secret)
    assert answer.status_code == 401
    assert answer.json() == INVALID_TOKEN


def test_the_token_of_a_deactivated_user_is_refused(platform):
    user = _user(platform)
    secret = _issue(platform, user)
    with platform.schema("clinic_a"):
        user_deactivate(user=user)
    assert _me(platform, secret).json() == INVALID_TOKEN


def test_an_unknown_token_is_refused(platform):
    answer = _me(platform, "icl_" + "A" * 43)
    assert answer.status_code == 401
    assert answer.json() == INVALID_TOKEN


@pytest.mark.parametrize(
    "header", ["Token abc", "Bearer", "Bearer two parts", "Basic dXNlcjpwYXNz", "bearer-abc"],
)
def test_a_malformed_authorization_header_is_refused(platform, header):
    client = platform.http("clinic_a")
    answer = client.get("/api/v1/me/", headers={"Authorization": header})
    assert answer.status_code == 401
    assert answer.json() == MALFORMED


def test_no_credentials_answers_401_not_authenticated(platform):
    answer = platform.http("clinic_a").get("/api/v1/me/")
    assert answer.status_code == 401
    assert answer.json() == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize(("owner", "other"), [("clinic_a", "clinic_c"), ("clinic_a", "hospital_b"), ("hospital_b", "clinic_a")])
def test_a_token_presented_on_another_tenants_domain_is_refused(platform, owner, other):
    role = "clinic_admin" if owner.startswith("clinic") else "hospital_admin"
    secret = platform.tokens[(owner, role)]
    answer = platform.http(other, token=secret).get("/api/v1/me/")
    assert answer.status_code == 401
    assert answer.json() == INVALID_TOKEN


def test_the_bearer_keyword_is_case_insensitive(platform):
    secret = platform.tokens[("clinic_a", "technologist")]
    answer = platform.http("clinic_a").get("/api/v1/me/", headers={"Authorization": f"bearer {secret}"})
    assert answer.status_code == 200


def test_only_the_sha256_of_a_token_is_stored(platform):
    user = _user(platform)
    secret = _issue(platform, user)
    with platform.schema("clinic_a"):
        token = ApiToken.objects.get(user=user)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts_apitoken AS row WHERE row::text LIKE %s", [f"%{secret[4:]}%"])
            rows_holding_the_secret = cursor.fetchone()[0]
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.key_prefix == secret[:10]
    assert rows_holding_the_secret == 0


def test_a_token_carries_256_bits_and_a_default_expiry(platform):
    from django.conf import settings

    user = _user(platform)
    with platform.schema("clinic_a"):
        issued = token_issue(user=user)
    assert issued.secret.startswith("icl_") and len(issued.secret) == 4 + 43
    lifetime = issued.token.expires_at - issued.token.created_at
    assert abs(lifetime - settings.API_TOKEN_DEFAULT_LIFETIME) < timedelta(seconds=5)


# --- the tokens API -------------------------------------------------------------------------------------


def test_a_user_issues_a_token_over_the_api_and_sees_the_secret_once(platform):
    user = _user(platform)
    client = platform.http("clinic_a", token=_issue(platform, user))
    issued = client.post("/api/v1/tokens/", json={"name": "laptop", "lifetime_days": 7})
    assert issued.status_code == 201
    secret = issued.json()["token"]
    assert _me(platform, secret).json()["username"] == user.username
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert [item["name"] for item in listed] == ["laptop", "test"]
    assert all(set(item) == {"id", "name", "key_prefix", "created_at", "expires_at", "revoked_at", "last_used_at"} for item in listed)
    assert secret not in client.get("/api/v1/tokens/").text


def test_a_user_revokes_their_own_token_over_the_api(platform):
    user = _user(platform)
    secret = _issue(platform, user)
    client = platform.http("clinic_a", token=secret)
    spare = client.post("/api/v1/tokens/", json={"name": "spare"}).json()
    assert client.delete(f"/api/v1/tokens/{spare['detail']['id']}/").status_code == 204
    assert _me(platform, spare["token"]).status_code == 401
    assert _me(platform, secret).status_code == 200


def test_a_user_cannot_revoke_someone_elses_token(platform):
    victim = _user(platform)
    victim_secret = _issue(platform, victim)
    with platform.schema("clinic_a"):
        victim_token_id = ApiToken.objects.get(user=victim).pk
    attacker = platform.http("clinic_a", token=_issue(platform, _user(platform)))
    answer = attacker.delete(f"/api/v1/tokens/{victim_token_id}/")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert _me(platform, victim_secret).status_code == 200


def test_an_admin_may_revoke_any_token_of_the_tenant(platform):
    victim = _user(platform)
    victim_secret = _issue(platform, victim)
    with platform.schema("clinic_a"):
        victim_token_id = ApiToken.objects.get(user=victim).pk
    answer = platform.http("clinic_a", "clinic_admin").delete(f"/api/v1/tokens/{victim_token_id}/")
    assert answer.status_code == 204
    assert _me(platform, victim_secret).status_code == 401
