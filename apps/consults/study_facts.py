"""Facts about a clinic's study that the hospital's worklist shows and copies at submission (so the
worklist never reads the clinic's schema per row): the body parts examined and the patient's age."""

from __future__ import annotations

import json

from apps.archive.models import Instance, Series, Study

PATIENT_AGE_TAG = "00101010"  # Patient's Age (0010,1010), VR AS (PS3.5 §6.2)


def study_body_parts(study: Study) -> list[str]:
    """Body Part Examined (0018,0015) of the study's live series, distinct and sorted."""
    parts = (Series.objects.filter(study=study, deleted_at__isnull=True).exclude(body_part_examined="")
             .values_list("body_part_examined", flat=True).distinct())
    return sorted(parts)


def study_patient_age(study: Study) -> str:
    """The Patient's Age of the study's first live instance as recorded ("047Y"), or "" when absent."""
    metadata = (Instance.objects.filter(study=study, deleted_at__isnull=True).order_by("id")
                .values_list("metadata_json", flat=True).first())
    if not metadata:
        return ""
    values = json.loads(metadata).get(PATIENT_AGE_TAG, {}).get("Value") or [""]
    return str(values[0] or "")
