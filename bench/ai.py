"""AI benchmarks (issue 5): the nodule detector on a full-size chest CT, and the AI queue under load.

1. ``detector``: a 300-slice 512×512 chest CT phantom (0.7 mm pixels, 1 mm slices, nodules and
   vessels planted), run through ``PulmonaryNoduleDetector`` on one core: wall time, the process's
   resident memory before and at its peak during detection (sampled every 10 ms from
   /proc/self/status), the numpy/Python allocation peak (tracemalloc), and how many planted nodules
   were found.
2. ``queue``: 4 public-cloud tenants share the ``ai`` queue served by 2 Celery workers (concurrency
   1 each). 20 nodule jobs are started at once, skewed: tenant 1 submits 8 first, then tenants 2–4
   4 each. Reported per tenant: queue-to-start latency (job ``started_at`` − ``created_at``), the
   broker's part of it (``started_at`` − ``dispatched_at``), and when its first job started and its
   last finished; fairness means no tenant waits for another's backlog (``services.jobs_dispatch``
   keeps at most ``AI_TENANT_MAX_RUNNING_JOBS`` = 1 job per tenant in flight on the shared queue).

From the repository root (PostgreSQL and Redis on loopback, as for the tests):

    .venv/bin/python bench/ai.py                       # both parts
    .venv/bin/python bench/ai.py --part detector
    .venv/bin/python bench/ai.py --part queue

The queue part uses its own database (``--database-url``, default ``…/ic_ai_bench``, dropped and
created afresh) and Redis database (``--broker-url``, default ``redis://127.0.0.1:6379/13``), with
filesystem storage in a temporary folder. Results print as JSON (``--json PATH`` writes them too).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.measure import latency_summary  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ic_ai_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/13"
TENANT_JOBS = (8, 4, 4, 4)


# --- 1. the detector -------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class _PeakRss:
    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> _PeakRss:
        self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def bench_detector(slices: int = 300, size: int = 512) -> dict[str, Any]:
    import numpy as np

    from apps.ai.engines.base import volume_from_datasets
    from apps.ai.engines.pulmonary_nodule import PulmonaryNoduleDetector
    from tests.factories.chest_phantom import generate_chest_phantom, juxta_vascular_spec

    started = time.perf_counter()
    phantom = generate_chest_phantom(juxta_vascular_spec(rows=size, columns=size, slices=slices,
                                                         pixel_spacing_mm=0.7, slice_thickness_mm=1.0))
    volume = volume_from_datasets(phantom.datasets())
    truth = phantom.nodules
    del phantom
    preparation_seconds = time.perf_counter() - started

    detector = PulmonaryNoduleDetector()
    baseline_rss = _rss_bytes()
    tracemalloc.start()
    with _PeakRss() as peak:
        began = time.perf_counter()
        result = detector.run(volume)
        wall_seconds = time.perf_counter() - began
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    found = 0
    for nodule in truth:
        centre = np.array(nodule.center_patient_mm)
        if any(finding.centroid_patient_mm is not None
               and np.linalg.norm(np.array(finding.centroid_patient_mm) - centre) <= max(nodule.semi_axes_mm)
               for finding in result.findings):
            found += 1
    return {
        "volume": {"slices": slices, "rows": size, "columns": size, "voxels": int(volume.voxels.size),
                   "volume_megabytes": round(volume.voxels.nbytes / 2**20, 1)},
        "preparation_seconds": round(preparation_seconds, 1),
        "detector_wall_seconds": round(wall_seconds, 2),
        "detector_timings_seconds": result.summary["timings_seconds"],
        "rss_before_detection_megabytes": round(baseline_rss / 2**20, 1),
        "rss_peak_during_detection_megabytes": round(peak.peak / 2**20, 1),
        "rss_added_by_detection_megabytes": round((peak.peak - baseline_rss) / 2**20, 1),
        "allocation_peak_during_detection_megabytes": round(traced_peak / 2**20, 1),
        "planted_nodules": len(truth),
        "planted_nodules_found": found,
        "findings": len(result.findings),
    }


# --- 2. the queue ---------------------------------------------------------------------------------------


def _recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _environment(database_url: str, broker_url: str, storage_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "STORAGE_BACKEND": "filesystem",
        "STORAGE_ROOT": str(storage_root),
        "PYTHONPATH": str(REPO_ROOT),
        "LOG_LEVEL": "WARNING",
    })
    return env


def _copy_with_new_uids(datasets: list[Any]) -> list[bytes]:
    from pydicom.uid import generate_uid

    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    files = []
    for dataset in datasets:
        copy = dataset.copy()
        copy.file_meta = dataset.file_meta.copy()
        copy.StudyInstanceUID, copy.SeriesInstanceUID, copy.FrameOfReferenceUID = study, series, frame
        copy.SOPInstanceUID = generate_uid()
        copy.file_meta.MediaStorageSOPInstanceUID = copy.SOPInstanceUID
        buffer = io.BytesIO()
        copy.save_as(buffer, enforce_file_format=True)
        files.append(buffer.getvalue())
    return files


def bench_queue(database_url: str, broker_url: str) -> dict[str, Any]:
    storage_root = Path(tempfile.mkdtemp(prefix="ic-ai-bench-"))
    env = _environment(database_url, broker_url, storage_root)
    os.environ.update({key: env[key] for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL",
                                                 "STORAGE_BACKEND", "STORAGE_ROOT", "LOG_LEVEL")})
    _recreate_database(database_url)
    subprocess.run([sys.executable, "manage.py", "migrate_schemas", "--shared", "-v", "0"], cwd=REPO_ROOT, env=env,
                   check=True)
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from apps.ai.models import AIJob
    from apps.ai.services import job_start
    from apps.archive.services.ingest import StreamPart, instances_store
    from apps.audit.services import Actor
    from tenants.services import tenant_provision
    from tests.factories.chest_phantom import generate_chest_phantom, juxta_vascular_spec

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    actor = Actor.system("bench")
    tenants = [tenant_provision(slug=f"ai-bench-{number}", name=f"AI bench {number}", kind="clinic",
                                deployment="public_cloud").tenant for number in range(1, len(TENANT_JOBS) + 1)]
    phantom = generate_chest_phantom(juxta_vascular_spec(pixel_spacing_mm=1.2, slice_thickness_mm=2.0, rows=200,
                                                         columns=200, slices=60, seed=5))
    datasets = phantom.datasets()
    studies: dict[str, list[str]] = {}
    for tenant, count in zip(tenants, TENANT_JOBS, strict=True):
        with tenant_context(tenant):
            studies[tenant.slug] = []
            for _ in range(count):
                files = _copy_with_new_uids(datasets)
                report = instances_store(parts=[StreamPart(io.BytesIO(data)) for data in files], actor=actor)
                studies[tenant.slug].append(report.study_instance_uids[0])

    workers = []
    for number in (1, 2):
        log = open(storage_root / f"worker-{number}.log", "wb")
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "ai", "-n", f"ai-bench-{number}@%h",
             "--concurrency", "1", "--pool", "prefork", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel", "INFO"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        ))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                " ready." in (storage_root / f"worker-{n}.log").read_text(errors="replace") for n in (1, 2)):
            time.sleep(0.2)
        submitted = time.perf_counter()
        job_ids: dict[str, list[str]] = {}
        for tenant in tenants:
            with tenant_context(tenant):
                job_ids[tenant.slug] = [str(job_start(engine_name="imaging-cloud-pulmonary-nodule",
                                                      study_instance_uid=uid, actor=actor).job.pk)
                                        for uid in studies[tenant.slug]]
        submit_seconds = time.perf_counter() - submitted

        def all_finished() -> bool:
            for tenant in tenants:
                with tenant_context(tenant):
                    if AIJob.objects.filter(state__in=["queued", "running"]).exists():
                        return False
            return True

        deadline = time.monotonic() + 900
        while not all_finished():
            if time.monotonic() > deadline:
                raise RuntimeError("jobs did not finish within 15 minutes")
            time.sleep(0.5)
        makespan = time.perf_counter() - submitted
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)

    per_tenant: dict[str, Any] = {}
    all_latencies: list[float] = []
    first_created = None
    rows: dict[str, list[Any]] = {}
    for tenant in tenants:
        with tenant_context(tenant):
            rows[tenant.slug] = list(AIJob.objects.filter(pk__in=job_ids[tenant.slug]).values(
                "state", "created_at", "dispatched_at", "started_at", "finished_at", "attempts"))
            earliest = min(row["created_at"] for row in rows[tenant.slug])
            first_created = earliest if first_created is None else min(first_created, earliest)
    for tenant in tenants:
        tenant_rows = rows[tenant.slug]
        latencies = [(row["started_at"] - row["created_at"]).total_seconds() for row in tenant_rows]
        all_latencies += latencies
        per_tenant[tenant.slug] = {
            "jobs": len(tenant_rows),
            "states": sorted({row["state"] for row in tenant_rows}),
            "queue_to_start": latency_summary(latencies),
            # The broker's part alone: from the run message being sent to the worker starting it.
            "message_to_start": latency_summary(
                [(row["started_at"] - row["dispatched_at"]).total_seconds() for row in tenant_rows]),
            "first_start_after_submission_s": round(min(
                (row["started_at"] - first_created).total_seconds() for row in tenant_rows), 2),
            "last_finish_after_submission_s": round(max(
                (row["finished_at"] - first_created).total_seconds() for row in tenant_rows), 2),
        }
    shutil.rmtree(storage_root, ignore_errors=True)
    return {
        "workers": 2, "worker_concurrency": 1, "tenants": len(tenants), "jobs": sum(TENANT_JOBS),
        "jobs_per_tenant_in_submission_order": list(TENANT_JOBS),
        "per_tenant_running_cap": int(getattr(settings, "AI_TENANT_MAX_RUNNING_JOBS", 1)),
        "submit_seconds": round(submit_seconds, 2),
        "makespan_seconds": round(makespan, 2),
        "queue_to_start_all": latency_summary(all_latencies),
        "per_tenant": per_tenant,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["detector", "queue", "all"], default="all")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if options.part in ("detector", "all"):
        results["detector"] = bench_detector(options.slices, options.size)
        print(json.dumps({"detector": results["detector"]}, indent=2), flush=True)
    if options.part in ("queue", "all"):
        results["queue"] = bench_queue(options.database_url, options.broker_url)
        print(json.dumps({"queue": results["queue"]}, indent=2), flush=True)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
