"""Liveness and readiness: /healthz answers if the process runs; /readyz checks each dependency.

Anyone (a load balancer, a probe) learns ready or not and "ok"/"failed" per check; only an operator
(a platform Bearer token, on the platform domain) sees timings and error texts, which name hosts,
buckets and versions (docs/security.md)."""

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
        broker.ensure_connection(max_retries=1, timeout=2)


def _check_storage() -> None:
    from apps.storage.backends import store_for_bucket

    store_for_bucket(bucket=settings.S3_BUCKET).check()


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storage}


def _asked_by_operator(request: HttpRequest) -> bool:
    from django_tenants.utils import get_public_schema_name

    from apps.accounts.authentication import bearer_secret
    from apps.accounts.permissions import is_operator
    from apps.accounts.services import token_authenticate

    tenant = getattr(request, "tenant", None)
    secret = bearer_secret(request.META.get("HTTP_AUTHORIZATION", ""))
    if secret is None or tenant is None or tenant.schema_name != get_public_schema_name():
        return False
    token = token_authenticate(secret)
    return token is not None and is_operator(token.user)


def readyz(request: HttpRequest) -> JsonResponse:
    details: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as error:  # noqa: BLE001 - a readiness probe reports every failure, whatever it is
            details[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        else:
            details[name] = {"ok": True, "milliseconds": round((time.perf_counter() - started) * 1000, 1)}
    ready = all(item["ok"] for item in details.values())
    body: dict[str, object] = {
        "status": "ready" if ready else "not_ready",
        "checks": {name: "ok" if item["ok"] else "failed" for name, item in details.items()},
    }
    if _asked_by_operator(request):
        body["details"] = details
    response = JsonResponse(body, status=200 if ready else 503)
    response["Cache-Control"] = "no-store"
    return response
