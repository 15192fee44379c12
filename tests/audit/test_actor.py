"""The actor is a plain value built at the request edge: who (user id, username), in which role, signed
in to which tenant, from which address (docs/security.md "Trusted proxies and client addresses")."""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from apps.accounts.models import User
from apps.audit.services import Actor
from tenants.models import Tenant


def test_an_actor_from_a_signed_in_request_names_the_user_role_tenant_and_address(settings):
    settings.TRUSTED_PROXY_HOPS = 0
    request = RequestFactory().get("/api/v1/me/", REMOTE_ADDR="198.51.100.7")
    request.user = User(pk=42, username="radiologist-user", role="radiologist")
    request.tenant = Tenant(slug="test-hospital-b", schema_name="t_test_hospital_b")

    assert Actor.from_request(request) == Actor(
        kind="user", identifier="42", name="radiologist-user", client_ip="198.51.100.7",
        role="radiologist", tenant_slug="test-hospital-b",
    )


def test_an_actor_from_an_anonymous_request_names_only_the_address(settings):
    settings.TRUSTED_PROXY_HOPS = 0
    request = RequestFactory().get("/film/x", REMOTE_ADDR="203.0.113.9")
    request.user = AnonymousUser()

    assert Actor.from_request(request) == Actor(kind="anonymous", name="anonymous", client_ip="203.0.113.9")


def test_an_actor_cannot_be_changed_once_built():
    actor = Actor.system("archive")

    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.name = "someone else"  # type: ignore[misc]
