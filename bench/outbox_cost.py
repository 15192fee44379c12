"""What the transactional outbox costs a one-instance STOW-RS request (docs/benchmarks.md).

One client sends N single-instance STOW-RS requests, each instance the first of its own series, so
every request writes an outbox row (the series' first thumbnail, docs/architecture.md "Data path of
a task"), publishes it after the commit and marks it sent. The request path is the platform's own
(middleware, view, ingest service) run in this process through Django's test client, so that
`connection.execute_wrapper` sees every statement of the request: the outbox's two statements (the
INSERT in the ingest transaction, the UPDATE of `sent_at` after the publish) are timed apart from
the rest. No production code is changed or flagged off for it.

    DATABASE_URL=postgresql://…/<a migrated database> CELERY_BROKER_URL=redis://…/<db> \\
        .venv/bin/python -m bench.outbox_cost --instances 300

It provisions (once) a tenant `bench-outbox` with local filesystem storage in a temporary folder
(fsync on, as in production), and prints p50/p95 of the request and of the outbox statements.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

OUTBOX_TABLE = '"tenants_outboxtask"'


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class OutboxStatementTimer:
    """An execute wrapper that adds up the time of the statements on the outbox table, by kind
    (INSERT: the row in the request's transaction; UPDATE: `sent_at` after the publish)."""

    def __init__(self) -> None:
        self.seconds_by_kind: dict[str, float] = {"INSERT": 0.0, "UPDATE": 0.0}
        self.statements = 0

    @property
    def seconds(self) -> float:
        return sum(self.seconds_by_kind.values())

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if OUTBOX_TABLE not in sql:
            return execute(sql, params, many, context)
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = sql.lstrip().split(None, 1)[0].upper()
            self.seconds_by_kind[kind] = self.seconds_by_kind.get(kind, 0.0) + time.perf_counter() - began
            self.statements += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--warm-up", type=int, default=10, help="requests sent first and not counted")
    arguments = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ["STORAGE_BACKEND"] = "filesystem"
    os.environ["STORAGE_ROOT"] = tempfile.mkdtemp(prefix="ic-outbox-bench-")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from apps.accounts.models import User
    from apps.accounts.services import token_issue, user_create
    from apps.storage.tenant_storage import storage_for
    from tenants.models import Tenant
    from tenants.services import tenant_provision
    from tests.support.dicomweb import ct_study, multipart_body

    settings.ALLOWED_HOSTS = ["*"]
    connection.set_schema_to_public()
    tenant = Tenant.objects.filter(slug="bench-outbox").first() or tenant_provision(
        slug="bench-outbox", name="Bench Outbox", kind="clinic", deployment="dedicated_cloud", plan_code=None,
    ).tenant
    storage_for(tenant).prepare()
    connection.set_tenant(tenant)
    user = User.objects.filter(username="bench").first() or user_create(username="bench", role="technologist")
    secret = token_issue(user=user, name="bench").secret
    connection.set_schema_to_public()
    client = Client(HTTP_HOST=tenant.get_primary_domain().domain, HTTP_AUTHORIZATION=f"Bearer {secret}")

    bodies = [multipart_body(ct_study(1, size=256).files) for _ in range(arguments.warm_up + arguments.instances)]
    request_seconds: list[float] = []
    outbox_seconds: list[float] = []
    insert_seconds: list[float] = []
    update_seconds: list[float] = []
    statements: list[int] = []
    began_all = 0.0
    for number, (body, content_type) in enumerate(bodies):
        if number == arguments.warm_up:
            began_all = time.perf_counter()
        timer = OutboxStatementTimer()
        began = time.perf_counter()
        with connection.execute_wrapper(timer):
            response = client.post("/dicomweb/studies", data=body, content_type=content_type,
                                   HTTP_ACCEPT="application/dicom+json")
        elapsed = time.perf_counter() - began
        assert response.status_code == 200, response.content[:500]
        if number >= arguments.warm_up:
            request_seconds.append(elapsed)
            outbox_seconds.append(timer.seconds)
            insert_seconds.append(timer.seconds_by_kind["INSERT"])
            update_seconds.append(timer.seconds_by_kind["UPDATE"])
            statements.append(timer.statements)
    wall = time.perf_counter() - began_all

    def ms(value: float) -> str:
        return f"{value * 1000:.2f}"

    print(f"one-instance STOW-RS, {arguments.instances} requests, one client, every instance a new series")
    print(f"request      p50 {ms(_percentile(request_seconds, 0.5))} ms  p95 {ms(_percentile(request_seconds, 0.95))} ms"
          f"  throughput {arguments.instances / wall:.1f} instances/s")
    print(f"outbox SQL   p50 {ms(_percentile(outbox_seconds, 0.5))} ms  p95 {ms(_percentile(outbox_seconds, 0.95))} ms"
          f"  mean {ms(statistics.fmean(outbox_seconds))} ms  statements/request {statistics.fmean(statements):.1f}"
          f"  share of request time {sum(outbox_seconds) / sum(request_seconds) * 100:.1f} %")
    for kind, values in (("  INSERT", insert_seconds), ("  UPDATE", update_seconds)):
        print(f"{kind}     p50 {ms(_percentile(values, 0.5))} ms  p95 {ms(_percentile(values, 0.95))} ms")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
