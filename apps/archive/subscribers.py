"""The archive's own reaction to a stable study: render its final thumbnails.

While a study is arriving, a thumbnail is made for each new series from what has arrived so far;
once the study is stable, the thumbnails of its middle images are rendered (cached ones are kept).
"""

from __future__ import annotations

from apps.archive.events import StudyStable, on_study_stable
from apps.archive.models import Series
from tenants.deployment import WorkKind
from tenants.queues import current_tenant, enqueue_on_commit


@on_study_stable("archive.thumbnails")
def thumbnails_of_stable_study(event: StudyStable) -> None:
    from apps.archive.tasks import study_derivatives_warm

    series_ids = list(
        Series.objects.filter(study_id=event.study_id, deleted_at__isnull=True).values_list("id", flat=True)
    )
    enqueue_on_commit(
        study_derivatives_warm, tenant=current_tenant(), work=WorkKind.INGEST, args=(event.study_id, sorted(series_ids))
    )
