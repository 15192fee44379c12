"""The live server answers from its own thread: let it reach the database during every test here."""

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def live_server_database_access(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield
