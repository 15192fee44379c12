"""Cloud film benchmark (issue 6): the film job on a 300-image CT study, and the patient page's
first image on a cold and a warm cache.

1. ``job``: a 300-slice 512×512 CT study is stored through the archive's ingest path (filesystem
   storage), then the film job (``apps.films.services.film_render``, the body of the ``film`` task)
   runs in-process, twice: the default film (key images absent: one representative image per
   series, 2×2) and the whole study on 4×5 sheets (300 images, 15 sheets, JPEG each + one PDF).
2. ``page``: the platform runs under gunicorn (2 workers, as deployed); a patient client opens the
   link (code entered first, its session kept), then measures over HTTP: the page itself, page +
   first film sheet (what the phone shows first), and a stack-viewer frame from the middle of the
   series on a cold cache (rendered from the DICOM object) and warm (the rendered JPEG cached).
   Each warm figure is the median of 20 requests; cold figures are single first requests, repeated
   over 5 different frames.

From the repository root (PostgreSQL and Redis on loopback, as for the tests):

    .venv/bin/python bench/film.py [--slices 300] [--json PATH]

It uses its own database (``--database-url``, default ``…/ic_film_bench``, dropped and created
afresh) and a temporary storage folder.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.ai import _environment, _recreate_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ic_film_bench"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _setup(database_url: str, slices: int) -> tuple[Any, str, Path, dict[str, str]]:
    storage_root = Path(tempfile.mkdtemp(prefix="ic-film-bench-"))
    env = _environment(database_url, "redis://127.0.0.1:6379/12", storage_root)
    os.environ.update({key: env[key] for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL",
                                                 "STORAGE_BACKEND", "STORAGE_ROOT", "LOG_LEVEL")})
    _recreate_database(database_url)
    subprocess.run([sys.executable, "manage.py", "migrate_schemas", "--shared", "-v", "0"], cwd=REPO_ROOT, env=env,
                   check=True)
    import django

    django.setup()
    from apps.archive.services.ingest import StreamPart, instances_store
    from apps.audit.services import Actor
    from tenants.context import tenant_entered
    from tenants.services import tenant_provision
    from tests.factories.dicom_factory import make_ct_series, to_part10_bytes

    tenant = tenant_provision(slug="film-bench", name="Film bench", kind="clinic", deployment="public_cloud").tenant
    with tenant_entered(tenant):
        datasets = make_ct_series(slices, rows=512, columns=512, patient_id="FILM-BENCH")
        stored = instances_store(parts=[StreamPart(io.BytesIO(to_part10_bytes(d))) for d in datasets],
                                 actor=Actor.system("bench"))
        assert not stored.failed, stored.failed
    return tenant, stored.study_instance_uids[0], storage_root, env


def bench_job(tenant: Any, study_uid: str) -> dict[str, Any]:
    from apps.films.models import Film
    from apps.films.services import film_render
    from tenants.context import tenant_entered

    results: dict[str, Any] = {}
    with tenant_entered(tenant):
        from apps.archive.selectors import instances_for_retrieval

        every_image = [file.sop_instance_uid for file in instances_for_retrieval(study_instance_uid=study_uid)]
        for name, layout, key_images in [("default_2x2", "2x2", []), ("all_images_4x5", "4x5", every_image)]:
            film = Film.objects.create(study_instance_uid=study_uid, layout=layout, requested_by="bench",
                                       key_image_sop_instance_uids=key_images)
            started = time.perf_counter()
            outcome = film_render(film_id=film.pk)
            seconds = time.perf_counter() - started
            film.refresh_from_db()
            results[name] = {"outcome": outcome, "seconds": round(seconds, 2), "images": film.image_count,
                             "sheets": len(film.sheet_keys)}
    return results


def bench_page(tenant: Any, study_uid: str, env: dict[str, str]) -> dict[str, Any]:
    import requests

    from apps.audit.services import Actor
    from apps.films.models import Film
    from apps.films.services import film_link_issue
    from tenants.context import tenant_entered

    with tenant_entered(tenant):
        film = Film.objects.filter(layout="2x2").first()
        issued = film_link_issue(film_id=film.pk, actor=Actor.system("bench"), created_by="bench")
    port = _free_port()
    log = open(Path(env["STORAGE_ROOT"]) / "gunicorn.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}",
                               "-w", "2", "--log-level", "warning"], cwd=REPO_ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        session = requests.Session()
        session.headers["Host"] = "localhost"
        base = f"http://127.0.0.1:{port}/film/{issued.token}"
        deadline = time.monotonic() + 30
        while True:
            try:
                page = session.get(base, timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        opened = session.post(base, data={"csrfmiddlewaretoken": token, "code": issued.access_code},
                              headers={"Origin": "http://localhost", "Host": "localhost"})
        assert opened.status_code == 200, opened.status_code

        def timed(path: str) -> float:
            started = time.perf_counter()
            response = session.get(base + path, timeout=30)
            assert response.status_code == 200, (path, response.status_code)
            return time.perf_counter() - started

        def page_and_first_sheet() -> float:
            return timed("") + timed("/sheets/1.jpg")

        cold_first = page_and_first_sheet()
        warm_first = statistics.median(page_and_first_sheet() for _ in range(20))
        middle = None
        with tenant_entered(tenant):
            from apps.archive.selectors import instances_for_retrieval

            middle = len(instances_for_retrieval(study_instance_uid=study_uid)) // 2
        cold_frames = [timed(f"/series/0/{middle + offset}.jpg") for offset in range(5)]
        warm_frames = [timed(f"/series/0/{middle}.jpg") for _ in range(20)]
        return {
            "page_plus_first_sheet_first_request_s": round(cold_first, 3),
            "page_plus_first_sheet_median_s": round(warm_first, 3),
            "viewer_frame_cold_median_s": round(statistics.median(cold_frames), 3),
            "viewer_frame_cold_max_s": round(max(cold_frames), 3),
            "viewer_frame_warm_median_s": round(statistics.median(warm_frames), 3),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    tenant, study_uid, storage_root, env = _setup(arguments.database_url, arguments.slices)
    try:
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average": os.getloadavg()},
            "slices": arguments.slices,
            "job": bench_job(tenant, study_uid),
            "page": bench_page(tenant, study_uid, env),
        }
    finally:
        shutil.rmtree(storage_root, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if arguments.json:
        arguments.json.write_text(text)


if __name__ == "__main__":
    main()
