"""Answers for the moments a dependency (database, broker, object storage) does not answer.

A request that fails because PostgreSQL restarts, Redis is away or S3 hangs gets a 503 in the
protocol's JSON form, `{code: "service_unavailable", detail}` with Retry-After, instead of Django's
HTML "Server Error (500)": clients (dicomweb-client, OHIF, the edge gateway) retry a 503 and give
up on a 500. The URL configurations' handler500 (apps.core.errors.server_error_handler) and the
tenant routing middleware answer with it (docs/operations.md)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

from apps.core.errors import DependencyUnavailable, error_body

logger = logging.getLogger(__name__)


def _outage_error_types() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import ConnectionError as S3ConnectionError
    from botocore.exceptions import ReadTimeoutError
    from kombu.exceptions import OperationalError as BrokerOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (
        OperationalError, InterfaceError, BrokerOperationalError, RedisConnectionError, RedisTimeoutError,
        S3ConnectionError, ReadTimeoutError, DependencyUnavailable,
    )


OUTAGE_ERRORS = _outage_error_types()


def outage_response(error: BaseException) -> JsonResponse:
    logger.warning("dependency outage answered 503: %s: %s", type(error).__name__, error)
    response = JsonResponse(
        error_body(
            "service_unavailable",
            "A service the platform depends on is not answering at the moment; nothing was changed. "
            "Try again shortly.",
        ),
        status=503,
    )
    response["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response

