"""The answer to a sign-in refused by django-axes (AXES_LOCKOUT_CALLABLE): the sign-in page again
with a plain message, or `{code, detail}` JSON for a client that asks for JSON; 429 either way."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.errors import json_error

LOCKED_CODE = "sign_in_locked"


def lockout_minutes() -> int:
    return max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))


def sign_in_locked_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    # The same words whether the user name or the address hit the limit, and whether the user exists,
    # so the answer tells an attacker nothing about which accounts there are.
    detail = (f"Too many failed sign-ins for this user name or from this address. "
              f"Try again in {lockout_minutes()} minutes.")
    if "application/json" in request.headers.get("Accept", ""):
        return json_error(LOCKED_CODE, detail, status=429)
    context = {"form": AuthenticationForm(request), "locked_out_message": detail}
    return render(request, "accounts/login.html", context, status=429)
