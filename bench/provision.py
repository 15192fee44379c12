"""Tenant provisioning time: one tenant at a time, N tenants in a row (docs/benchmarks.md "Targets": ≤ 5 s each,
linear).

Runs the real service (`tenants.services.tenant_provision`: template clone, domain, storage, first
admin with a hashed password, audit rows) against PostgreSQL, with filesystem storage in a temporary
folder. From the repository root:

    .venv/bin/python bench/provision.py --count 100

The database is `DATABASE_URL` from the environment, or by default a dedicated
`postgresql://postgres@127.0.0.1:5432/imaging_cloud_bench`. A database that does not exist yet is
created, made ready with `migrate_schemas --shared`, and dropped again at the end (unless --keep);
in a database that existed before, only the tenants this run provisioned are deleted at the end.

Reported: the `migrate_schemas --shared` time and the template-schema creation (both once), then per
tenant p50/p95/max/mean, the mean of the first 10 against the last 10 (their ratio shows growth with
the number of tenants already there), the least-squares slope of time against tenant number, the
total; and the time to suspend and delete each tenant.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/imaging_cloud_bench"
TARGET_SECONDS_EACH = 5.0
# "No super-linear growth": the last 10 may be at most this much slower than the first 10.
GROWTH_RATIO_LIMIT = 1.5


@dataclass
class ProvisioningResult:
    count: int
    kind: str
    database: str
    database_created_here: bool
    migrate_shared_seconds: float
    template_seconds: float
    per_tenant: dict[str, float]
    first_10_mean_ms: float
    last_10_mean_ms: float
    growth_ratio: float
    slope_ms_per_tenant: float
    total_seconds: float
    delete_per_tenant: dict[str, float]
    machine: dict[str, str]
    meets_target: bool


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100, help="tenants to provision in a row (default 100)")
    parser.add_argument(
        "--kind", choices=["clinic", "hospital", "mixed"], default="clinic",
        help="clinics (public cloud, shared bucket), hospitals (dedicated cloud, own bucket), or alternating",
    )
    parser.add_argument("--keep", action="store_true", help="keep the tenants and the database afterwards")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser.parse_args()


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def _maintenance_url(url: str) -> tuple[str, str]:
    """(URL of the `postgres` database on the same server, name of the target database)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    return urlunsplit(parts._replace(path="/postgres")), name


def ensure_database(url: str) -> bool:
    """Create the database if it does not exist; True when this run created it."""
    import psycopg
    from psycopg import sql

    maintenance, name = _maintenance_url(url)
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    maintenance, name = _maintenance_url(url)
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def configure_django(url: str, storage_root: str) -> None:
    # Production-like: DEBUG off (no query log growing over the run), real password hashing.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DEBUG"] = "false"
    os.environ["DATABASE_URL"] = url
    os.environ["STORAGE_BACKEND"] = "filesystem"
    os.environ["STORAGE_ROOT"] = storage_root
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def machine_description() -> dict[str, str]:
    def command_output(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres_version = cursor.fetchone()[0]
    memory = command_output("free", "-h").splitlines()
    return {
        "nproc": command_output("nproc"),
        "memory": memory[1].split()[1] if len(memory) > 1 else "unknown",  # `free -h` total
        "cpu": next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")), platform.processor() or "unknown",
        ) if Path("/proc/cpuinfo").exists() else platform.processor(),
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "os": platform.platform(),
        "load_average_at_start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def linear_slope(values: list[float]) -> float:
    """Least-squares slope of values against their index (seconds per tenant already provisioned)."""
    count = len(values)
    if count < 2:
        return 0.0
    mean_x = (count - 1) / 2
    mean_y = sum(values) / count
    numerator = sum((index - mean_x) * (value - mean_y) for index, value in enumerate(values))
    denominator = sum((index - mean_x) ** 2 for index in range(count))
    return numerator / denominator


def kind_for(index: int, kind: str) -> str:
    if kind == "mixed":
        return "clinic" if index % 2 == 0 else "hospital"
    return kind


def run(arguments: argparse.Namespace) -> ProvisioningResult:
    url = database_url()
    storage_root = tempfile.mkdtemp(prefix="imaging-cloud-bench-provision-")
    created_here = ensure_database(url)
    configure_django(url, storage_root)

    from django.core.management import call_command
    from django.db import connection, connections

    from bench.measure import latency_summary
    from tenants.services import template_schema_ensure, tenant_delete, tenant_provision, tenant_suspend

    slugs: list[str] = []
    try:
        started = time.perf_counter()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        migrate_seconds = time.perf_counter() - started
        machine = machine_description()

        started = time.perf_counter()
        template_schema_ensure()
        template_seconds = time.perf_counter() - started
        print(f"migrate_schemas --shared: {migrate_seconds:.2f} s; template schema: {template_seconds:.2f} s", flush=True)

        run_id = uuid.uuid4().hex[:6]
        durations: list[float] = []
        total_started = time.perf_counter()
        for index in range(arguments.count):
            slug = f"bench-{run_id}-{index:04d}"
            started = time.perf_counter()
            tenant_provision(slug=slug, name=f"Bench tenant {index}", kind=kind_for(index, arguments.kind))
            durations.append(time.perf_counter() - started)
            slugs.append(slug)
            if (index + 1) % 10 == 0 or index + 1 == arguments.count:
                print(f"  provisioned {index + 1:4d}/{arguments.count}: last {durations[-1] * 1000:7.1f} ms", flush=True)
        total_seconds = time.perf_counter() - total_started

        delete_durations: list[float] = []
        if not arguments.keep:
            for slug in list(slugs):
                started = time.perf_counter()
                tenant_suspend(slug=slug, reason="benchmark")
                tenant_delete(slug=slug)
                delete_durations.append(time.perf_counter() - started)
                slugs.remove(slug)

        window = min(10, len(durations))
        first = sum(durations[:window]) / window
        last = sum(durations[-window:]) / window
        summary = latency_summary(durations)
        return ProvisioningResult(
            count=arguments.count, kind=arguments.kind, database=urlsplit(url).path.lstrip("/"),
            database_created_here=created_here, migrate_shared_seconds=migrate_seconds,
            template_seconds=template_seconds, per_tenant=summary, first_10_mean_ms=first * 1000,
            last_10_mean_ms=last * 1000, growth_ratio=last / first, slope_ms_per_tenant=linear_slope(durations) * 1000,
            total_seconds=total_seconds, delete_per_tenant=latency_summary(delete_durations), machine=machine,
            meets_target=summary["max_ms"] <= TARGET_SECONDS_EACH * 1000 and last / first <= GROWTH_RATIO_LIMIT,
        )
    finally:
        # Whatever happened, leave no bench tenants behind in a database this run did not create.
        if slugs and not arguments.keep and not created_here:
            for slug in slugs:
                try:
                    tenant_suspend(slug=slug)
                    tenant_delete(slug=slug)
                except Exception as error:  # noqa: BLE001 - report and go on cleaning the others
                    print(f"could not delete {slug}: {error}", file=sys.stderr)
        connection.close()
        connections.close_all()
        if created_here and not arguments.keep:
            drop_database(url)
        shutil.rmtree(storage_root, ignore_errors=True)


def report(result: ProvisioningResult) -> str:
    per_tenant = result.per_tenant
    deletes = result.delete_per_tenant
    lines = [
        f"Provisioning {result.count} tenants ({result.kind}) in a row, database {result.database}",
        f"  machine: {result.machine['nproc']} cores ({result.machine['cpu']}), {result.machine['memory']} memory, "
        f"Python {result.machine['python']}, PostgreSQL {result.machine['postgresql']}, "
        f"load average at start {result.machine['load_average_at_start']}",
        f"  migrate_schemas --shared (once): {result.migrate_shared_seconds:.2f} s",
        f"  template schema creation (once): {result.template_seconds:.2f} s",
        f"  per tenant: p50 {per_tenant['p50_ms']:.0f} ms, p95 {per_tenant['p95_ms']:.0f} ms, "
        f"max {per_tenant['max_ms']:.0f} ms, mean {per_tenant['mean_ms']:.0f} ms",
        f"  first 10 mean {result.first_10_mean_ms:.0f} ms, last 10 mean {result.last_10_mean_ms:.0f} ms, "
        f"ratio {result.growth_ratio:.2f}; slope {result.slope_ms_per_tenant:+.2f} ms per tenant already there",
        f"  total: {result.total_seconds:.1f} s for {result.count} tenants",
    ]
    if deletes.get("samples"):
        lines.append(
            f"  suspend + delete per tenant: p50 {deletes['p50_ms']:.0f} ms, p95 {deletes['p95_ms']:.0f} ms, "
            f"max {deletes['max_ms']:.0f} ms"
        )
    verdict = "met" if result.meets_target else "NOT met"
    lines.append(
        f"  target (≤ {TARGET_SECONDS_EACH:.0f} s each, last-10/first-10 ≤ {GROWTH_RATIO_LIMIT}): {verdict}"
    )
    return "\n".join(lines)


def main() -> int:
    arguments = parse_arguments()
    if arguments.count < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    result = run(arguments)
    print(report(result))
    if arguments.json:
        arguments.json.write_text(json.dumps(asdict(result), indent=2))
    return 0 if result.meets_target else 1


if __name__ == "__main__":
    sys.exit(main())
