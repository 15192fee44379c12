"""Liveness and readiness: /healthz answers if the process runs; /readyz checks each dependency."""

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


def readyz(request: HttpRequest) -> JsonResponse:
    report: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as error:  # noqa: BLE001 - a readiness probe reports every failure, whatever it is
            report[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        else:
            report[name] = {"ok": True, "milliseconds": round((time.perf_counter() - started) * 1000, 1)}
    ready = all(item["ok"] for item in report.values())
    return JsonResponse({"status": "ready" if ready else "not_ready", "checks": report}, status=200 if ready else 503)
