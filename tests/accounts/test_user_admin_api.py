"""Tenant admins manage their tenant's users over /api/v1/users/."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from tests.support.platform import unique_suffix
from tests.support.tenancy import session_login


@pytest.fixture
def clinic_admin(platform):
    return platform.http("clinic_a", "clinic_admin")


def _create(client, **body):
    body.setdefault("username", f"member-{unique_suffix()}")
    body.setdefault("role", "technologist")
    return client.post("/api/v1/users/", json=body)


def test_an_admin_creates_a_user_who_can_then_sign_in(platform, clinic_admin):
    username = f"new-{unique_suffix()}"
    answer = _create(clinic_admin, username=username, role="referring_physician", password="a-long-passphrase",
                     email="doctor@example.org", display_name="Dr. New")
    assert answer.status_code == 201
    assert {key: answer.json()[key] for key in ("username", "role", "email", "display_name", "is_active")} == {
        "username": username, "role": "referring_physician", "email": "doctor@example.org",
        "display_name": "Dr. New", "is_active": True,
    }
    assert "password" not in answer.json()
    _, login = session_login(platform, platform.host("clinic_a"), username=username, password="a-long-passphrase")
    assert login.status_code == 302


def test_the_user_list_shows_the_new_user(clinic_admin):
    username = _create(clinic_admin).json()["username"]
    listed = clinic_admin.get("/api/v1/users/", params={"limit": 1000}).json()["results"]
    usernames = [user["username"] for user in listed]
    assert username in usernames
    assert usernames == sorted(usernames)


@pytest.mark.parametrize("role", ["radiologist", "hospital_admin", "operator", "superuser"])
def test_a_role_from_another_kind_of_tenant_is_refused(clinic_admin, role):
    answer = _create(clinic_admin, role=role)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_role"


def test_a_duplicate_username_is_refused(clinic_admin):
    username = _create(clinic_admin).json()["username"]
    answer = _create(clinic_admin, username=username)
    assert answer.status_code == 409
    assert answer.json() == {"code": "duplicate_user", "detail": f"User {username!r} already exists."}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"username": "has space"}, "username"), ({"username": "../etc"}, "username"),
     ({"email": "not-an-email"}, "email")],
)
def test_invalid_user_fields_answer_400_with_the_field_named(clinic_admin, body, field):
    answer = _create(clinic_admin, **body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert list(answer.json()["detail"]) == [field]


def test_an_admin_changes_a_users_role_and_it_is_audited(platform, clinic_admin):
    user = _create(clinic_admin, role="technologist").json()
    answer = clinic_admin.patch(f"/api/v1/users/{user['id']}/", json={"role": "referring_physician"})
    assert (answer.status_code, answer.json()["role"]) == (200, "referring_physician")
    with platform.schema("clinic_a"):
        event = AuditEvent.objects.get(action="user.role_change", object_id=str(user["id"]))
    assert event.detail == {"from": "technologist", "to": "referring_physician"}
    assert event.actor_name == "clinic_admin-user"


def test_deactivating_a_user_revokes_their_tokens(platform, clinic_admin):
    from apps.accounts.models import User
    from apps.accounts.services import token_issue

    user = _create(clinic_admin).json()
    with platform.schema("clinic_a"):
        secret = token_issue(user=User.objects.get(pk=user["id"])).secret
    assert platform.http("clinic_a", token=secret).get("/api/v1/me/").status_code == 200
    answer = clinic_admin.patch(f"/api/v1/users/{user['id']}/", json={"is_active": False})
    assert (answer.status_code, answer.json()["is_active"]) == (200, False)
    assert platform.http("clinic_a", token=secret).get("/api/v1/me/").status_code == 401


@pytest.mark.parametrize(
    ("password", "reason"),
    [("1234567890", "This password is too common."), ("short", "This password is too short."),
     ("8405729163", "This password is entirely numeric.")],
)
def test_a_weak_password_is_refused_by_the_password_validators(platform, clinic_admin, password, reason):
    from apps.accounts.models import User

    username = f"weak-{unique_suffix()}"
    answer = _create(clinic_admin, username=username, password=password)
    assert answer.status_code == 400
    assert answer.json()["code"] == "weak_password"
    assert reason in answer.json()["detail"]
    with platform.schema("clinic_a"):
        assert not User.objects.filter(username=username).exists()


def test_a_password_like_the_username_is_refused(clinic_admin):
    username = f"radiology-{unique_suffix()}"
    answer = _create(clinic_admin, username=username, password=username)
    assert answer.status_code == 400
    assert answer.json()["code"] == "weak_password"
    assert "too similar to the username" in answer.json()["detail"]


def test_reactivating_a_user_lets_them_sign_in_again_and_is_audited(platform, clinic_admin):
    username = f"back-{unique_suffix()}"
    user = _create(clinic_admin, username=username, password="a-long-passphrase").json()
    assert clinic_admin.patch(f"/api/v1/users/{user['id']}/", json={"is_active": False}).json()["is_active"] is False
    answer = clinic_admin.patch(f"/api/v1/users/{user['id']}/", json={"is_active": True})
    assert (answer.status_code, answer.json()["is_active"]) == (200, True)
    assert clinic_admin.get(f"/api/v1/users/{user['id']}/").json()["is_active"] is True
    _, login = session_login(platform, platform.host("clinic_a"), username=username, password="a-long-passphrase")
    assert login.status_code == 302
    with platform.schema("clinic_a"):
        assert AuditEvent.objects.filter(action="user.activate", object_id=str(user["id"])).count() == 1


def test_reading_an_unknown_user_answers_404(clinic_admin):
    answer = clinic_admin.get("/api/v1/users/987654321/")
    assert answer.status_code == 404
    assert answer.json() == {"code": "not_found", "detail": "Not found."}


def test_a_hospital_admin_creates_a_radiologist(platform):
    answer = _create(platform.http("hospital_b", "hospital_admin"), role="radiologist")
    assert (answer.status_code, answer.json()["role"]) == (201, "radiologist")
