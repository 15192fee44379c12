"""The archive's own reaction to a stable study: render its final thumbnails and its frames.

While a study is arriving, a thumbnail is made for each new series from what has arrived so far;
once the study is stable, the thumbnails of its middle images are rendered (cached ones are kept),
and each image as a plain /rendered request asks for it (ARCHIVE_WARM_RENDERED_FRAMES).
"""

from __future__ import annotations

from django.conf import settings

from apps.archive.events import StudyStable, on_study_stable
from apps.archive.models import Series
from tenants.context import current_tenant
from tenants.deployment import WorkKind
from tenants.queues import enqueue_on_commit


@on_study_stable("archive.thumbnails")
def thumbnails_of_stable_study(event: StudyStable) -> None:
    series_ids = list(
        Series.objects.filter(study_id=event.study_id, deleted_at__isnull=True).values_list("id", flat=True)
    )
    enqueue_on_commit(
        "apps.archive.tasks.study_derivatives_warm", tenant=current_tenant(), work=WorkKind.INGEST, args=(event.study_id, sorted(series_ids))
    )


@on_study_stable("archive.rendered_frames")
def rendered_frames_of_stable_study(event: StudyStable) -> None:
    if settings.ARCHIVE_WARM_RENDERED_FRAMES:
        enqueue_on_commit("apps.archive.tasks.study_rendered_warm", tenant=current_tenant(), work=WorkKind.INGEST, args=(event.study_id,))
