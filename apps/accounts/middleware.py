"""Staff sessions end after SESSION_IDLE_TIMEOUT_SECONDS without a request."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse

LAST_ACTIVITY_KEY = "accounts_last_activity"


def refresh_interval_seconds(timeout_seconds: int) -> float:
    # Writing the session on every request would cost a database write per page and API call;
    # once a minute (or a quarter of a short timeout) keeps the idle clock close enough.
    return min(60.0, timeout_seconds / 4)


class SessionIdleTimeoutMiddleware:
    """Signs out a session that has been idle too long; runs after AuthenticationMiddleware.

    Only signed-in sessions are timed: a patient's cloud-film session carries no user and keeps its
    own expiry (FILM_SESSION_MINUTES). Bearer-token requests do not touch the session at all."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timeout = int(settings.SESSION_IDLE_TIMEOUT_SECONDS)
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            last_activity = session.get(LAST_ACTIVITY_KEY)
            if last_activity is not None and time.time() - float(last_activity) > timeout:
                logout(request)  # flushes the session; the request goes on signed out
        response = self.get_response(request)
        # Stamped after the view too, so a session that has just signed in starts its idle clock now.
        if session is not None and SESSION_KEY in session:
            now = time.time()
            last_activity = session.get(LAST_ACTIVITY_KEY)
            if last_activity is None or now - float(last_activity) >= refresh_interval_seconds(timeout):
                session[LAST_ACTIVITY_KEY] = now
        return response
