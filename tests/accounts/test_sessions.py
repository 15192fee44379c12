"""Browser sessions: the login page, signing in and out, and what a session may do."""

from __future__ import annotations

import pytest

from apps.accounts.services import user_create
from tests.support.platform import unique_suffix
from tests.support.tenancy import ADMIN_PASSWORD, http_on, session_login


@pytest.fixture
def technologist(platform):
    username = f"tech-{unique_suffix()}"
    with platform.schema("clinic_a"):
        user_create(username=username, role="technologist", password=ADMIN_PASSWORD)
    return username


def test_the_login_page_renders_a_form_for_the_tenant(platform):
    page = platform.http("clinic_a").get("/accounts/login/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<p>Test Clinic A</p>" in page.text
    for field in ('name="username"', 'name="password"', 'name="csrfmiddlewaretoken"'):
        assert field in page.text


def test_signing_in_redirects_and_the_session_reaches_the_api(platform, technologist):
    client, answer = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"
    assert "sessionid" in client.cookies
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert (me.json()["username"], me.json()["role"]) == (technologist, "technologist")


def test_a_wrong_password_shows_the_form_again_without_a_session(platform, technologist):
    client, answer = session_login(platform, platform.host("clinic_a"), username=technologist, password="not-the-password")
    assert answer.status_code == 200
    assert "did not match" in answer.text
    assert "sessionid" not in client.cookies
    assert client.get("/api/v1/me/").status_code == 401


def test_a_users_credentials_do_not_work_on_another_tenants_domain(platform, technologist):
    client, answer = session_login(platform, platform.host("clinic_c"), username=technologist, password=ADMIN_PASSWORD)
    assert answer.status_code == 200
    assert "sessionid" not in client.cookies


def test_a_session_from_one_tenant_is_not_valid_on_another(platform, technologist):
    client, _ = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    stolen = http_on(platform, platform.host("clinic_c"))
    stolen.cookies.update(client.cookies)
    answer = stolen.get("/api/v1/me/")
    assert answer.status_code == 401
    assert answer.json()["code"] == "not_authenticated"


def test_a_session_must_send_the_csrf_token_to_change_anything(platform, technologist):
    client, _ = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    refused = client.post("/api/v1/tokens/", json={"name": "no csrf"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert "CSRF" in refused.json()["detail"]
    accepted = client.post(
        "/api/v1/tokens/", json={"name": "with csrf"}, headers={"X-CSRFToken": client.cookies["csrftoken"]}
    )
    assert accepted.status_code == 201


def test_signing_out_ends_the_session(platform, technologist):
    client, _ = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    answer = client.post(
        "/accounts/logout/", data={"csrfmiddlewaretoken": client.cookies["csrftoken"]}, allow_redirects=False
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, "/accounts/login/")
    assert client.get("/api/v1/me/").status_code == 401


def test_a_deactivated_user_cannot_sign_in(platform):
    from apps.accounts.models import User
    from apps.accounts.services import user_deactivate

    username = f"gone-{unique_suffix()}"
    with platform.schema("clinic_a"):
        user = user_create(username=username, role="technologist", password=ADMIN_PASSWORD)
        user_deactivate(user=User.objects.get(pk=user.pk))
    client, answer = session_login(platform, platform.host("clinic_a"), username=username, password=ADMIN_PASSWORD)
    assert answer.status_code == 200
    assert "sessionid" not in client.cookies


def _csrf(client) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"]}


def test_a_session_idle_longer_than_the_timeout_is_signed_out(platform, technologist, settings):
    import time

    settings.SESSION_IDLE_TIMEOUT_SECONDS = 2
    client, _ = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    assert client.get("/api/v1/me/").status_code == 200
    time.sleep(2.5)
    answer = client.get("/api/v1/me/")
    assert (answer.status_code, answer.json()["code"]) == (401, "not_authenticated")


def test_a_session_in_use_is_not_signed_out_by_the_idle_timeout(platform, technologist, settings):
    import time

    settings.SESSION_IDLE_TIMEOUT_SECONDS = 3
    client, _ = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    statuses = []
    for _ in range(5):  # 5 s of use in all, longer than the timeout, never idle for more than 1 s
        time.sleep(1)
        statuses.append(client.get("/api/v1/me/").status_code)
    assert statuses == [200] * 5


def test_a_session_signed_in_and_left_idle_is_signed_out_on_its_next_request(platform, technologist, settings):
    import time

    settings.SESSION_IDLE_TIMEOUT_SECONDS = 2
    client, _ = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    time.sleep(2.5)
    assert client.get("/api/v1/me/").status_code == 401


def test_a_token_minted_from_a_session_is_capped_at_the_session_token_lifetime(platform, technologist, settings):
    from datetime import datetime, timedelta

    from django.utils import timezone

    settings.SESSION_TOKEN_MAX_LIFETIME = timedelta(hours=12)
    client, _ = session_login(platform, platform.host("clinic_a"), username=technologist, password=ADMIN_PASSWORD)
    for body in ({"name": "asks for 30 days", "lifetime_days": 30}, {"name": "asks for the default"}):
        answer = client.post("/api/v1/tokens/", json=body, headers=_csrf(client))
        assert answer.status_code == 201
        expires_at = datetime.fromisoformat(answer.json()["detail"]["expires_at"])
        assert abs(expires_at - (timezone.now() + timedelta(hours=12))) < timedelta(minutes=1)


def test_a_token_minted_with_a_bearer_token_keeps_the_lifetime_asked_for(platform):
    from datetime import datetime, timedelta

    from django.utils import timezone

    answer = platform.http("clinic_a", "technologist").post("/api/v1/tokens/", json={"name": "ci", "lifetime_days": 30})
    assert answer.status_code == 201
    expires_at = datetime.fromisoformat(answer.json()["detail"]["expires_at"])
    assert abs(expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
