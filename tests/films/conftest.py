"""The live server answers from its own thread: let it reach the database during every test here."""

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def live_server_database_access(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


@pytest.fixture(autouse=True, scope="module")
def no_earlier_wrong_codes(platform: Any) -> None:
    """Wrong codes of an earlier run (a reused database) must not count against this one."""
    from apps.film_links.models import FilmCodeAttempt

    with platform.schema():
        FilmCodeAttempt.objects.all().delete()
