"""Liveness and readiness: /healthz answers if the process runs; /readyz checks each dependency.

Anyone (a load balancer, a probe) learns ready or not and "ok"/"failed" per check; only an operator
(a platform Bearer token, on the platform domain) sees timings and error texts, which name hosts,
buckets and versions (docs/security.md)."""

import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as CheckTimedOut

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

# Each check runs here with a time budget, so a hanging dependency (S3 that accepts and never
# answers) makes /readyz say "failed" on time instead of hanging the probe.
_CHECK_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


class NotEnoughDisk(Exception):
    pass


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    # This runs on a pool thread with its own connection: drop it if a restart broke it.
    connection.close_if_unusable_or_obsolete()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        connection.close()
        raise


def _check_broker() -> None:
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker:
        # One try, no back-off sleep: a refused connection fails at once, inside the time budget.
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


def _check_storage() -> None:
    from apps.storage.backends import store_for_bucket

    store_for_bucket(bucket=settings.S3_BUCKET).check()


def _check_disk() -> None:
    """Free space where this process writes: the filesystem backend's folder and the temporary folder
    (large uploads are spooled there). Below READINESS_MIN_FREE_DISK_PERCENT the process is not ready:
    a write would fail half way."""
    folders = [tempfile.gettempdir()]
    if settings.STORAGE_BACKEND == "filesystem":
        folders.append(settings.STORAGE_ROOT)
    for folder in folders:
        try:
            usage = shutil.disk_usage(folder)
        except FileNotFoundError:
            continue
        free_percent = 100 * usage.free / usage.total if usage.total else 0.0
        if free_percent < settings.READINESS_MIN_FREE_DISK_PERCENT:
            raise NotEnoughDisk(
                f"{folder}: {free_percent:.1f} % free, under {settings.READINESS_MIN_FREE_DISK_PERCENT} %"
            )


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storage, "disk": _check_disk}


def _asked_by_operator(request: HttpRequest) -> bool:
    from apps.core.outages import OUTAGE_ERRORS

    try:
        return _token_is_an_operators(request)
    except OUTAGE_ERRORS:
        return False


def _token_is_an_operators(request: HttpRequest) -> bool:
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
    started = time.perf_counter()
    running = {name: _CHECK_THREADS.submit(check) for name, check in CHECKS.items()}
    deadline = started + settings.READINESS_CHECK_TIMEOUT_SECONDS
    for name, future in running.items():
        try:
            future.result(timeout=max(0.0, deadline - time.perf_counter()))
        except CheckTimedOut:
            details[name] = {"ok": False, "error": f"no answer within {settings.READINESS_CHECK_TIMEOUT_SECONDS} s"}
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
