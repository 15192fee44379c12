"""The header badge of the hospital's pages: how many consults wait for the signed-in user."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from apps.consults.selectors import worklist_badge_count


def worklist_badge(request: HttpRequest) -> dict[str, Callable[[], int]]:
    """A callable, so only a page that shows the badge counts (the template calls it once)."""
    tenant, user = getattr(request, "tenant", None), getattr(request, "user", None)

    def count() -> int:
        if tenant is None or tenant.kind != "hospital" or user is None or not user.is_authenticated:
            return 0
        return worklist_badge_count(hospital=tenant, username=user.get_username(), role=str(getattr(user, "role", "")))

    return {"worklist_badge": count}
