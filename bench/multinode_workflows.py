"""Where each study's follow-up work stands, read from the index and storage (bench.multinode).

Run by the multi-node benchmark as a child process with the cluster's environment:

    python -m bench.multinode_workflows --tenant bench-clinic

and prints one JSON object. What the platform does after ingest (apps/archive/tasks.py and the
`on_study_stable` subscribers) leaves these traces, which are what this reads:

- stability: `Study.stable_at` is set once no instance has arrived for STUDY_STABLE_SECONDS (beat's
  `stable_studies_dispatch` → `studies_mark_stable`);
- thumbnails (`study_derivatives_warm`): the study's and every series' representative image has a
  cached thumbnail in storage;
- warm rendered frames (`study_rendered_warm`, when ARCHIVE_WARM_RENDERED_FRAMES): every image has
  its plain `/rendered` JPEG cached in storage.

It reads through the archive's own selectors and cache-key functions, so it looks exactly where
the tasks write. AI routing is not checked: the benchmark tenant has no engine or routing rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def study_states(tenant_slug: str) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django_tenants.utils import tenant_context

    from apps.archive import retrieval, selectors
    from apps.archive.models import Study
    from apps.dicom.rendering import DEFAULT_THUMBNAIL_SIZE
    from apps.dicom.transcode import VIDEO_TRANSFER_SYNTAXES
    from apps.storage.tenant_storage import storage_for
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=tenant_slug)
    pending: dict[str, list[str]] = {}
    studies = instances = 0
    with tenant_context(tenant):
        storage = storage_for(tenant)
        options = retrieval.default_rendered_options()
        for study in Study.objects.filter(deleted_at__isnull=True).prefetch_related("series"):
            studies += 1
            uid = study.study_instance_uid
            missing: list[str] = []
            if study.stable_at is None:
                missing.append("stable")
            representatives = [selectors.representative_instance(study_instance_uid=uid)] + [
                selectors.representative_instance(study_instance_uid=uid, series_instance_uid=series.series_instance_uid)
                for series in study.series.all() if series.deleted_at is None
            ]
            if any(not retrieval.thumbnail_is_cached(storage, image, size=DEFAULT_THUMBNAIL_SIZE,
                                                     media_type="image/jpeg")
                   for image in representatives if image is not None):
                missing.append("thumbnails")
            images = selectors.instances_for_retrieval(study_instance_uid=uid)
            instances += len(images)
            if settings.ARCHIVE_WARM_RENDERED_FRAMES and any(
                not retrieval.rendered_is_cached(storage, image, options) for image in images
                if image.has_pixels and image.transfer_syntax_uid not in VIDEO_TRANSFER_SYNTAXES
            ):
                missing.append("rendered")
            if missing:
                pending[uid] = missing
    return {"studies": studies, "instances": instances, "pending": pending}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.multinode_workflows", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", required=True, help="the tenant's slug")
    arguments = parser.parse_args(argv)
    print(json.dumps(study_states(arguments.tenant)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
