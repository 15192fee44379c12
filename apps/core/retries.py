"""How background work outlasts a dependency that is away for a while (a database restart, a
storage blip): the errors that can pass, and one retry schedule for them (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError

# A connection the database ended raises OperationalError; one used again after that, InterfaceError.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)

# Waits of 1, 2, 4 … 128 s without jitter (jitter drew them close to zero: the whole budget once
# passed in about 8 s), about 4 minutes in all: through a database restart or a 10 s outage.
OUTLAST_A_RESTART_BACKOFF_MAX_SECONDS = 128
OUTLAST_A_RESTART_RETRIES = 8
OUTLAST_A_RESTART: dict[str, Any] = {
    "retry_backoff": True, "retry_jitter": False, "retry_backoff_max": OUTLAST_A_RESTART_BACKOFF_MAX_SECONDS,
    "max_retries": OUTLAST_A_RESTART_RETRIES,
}
