"""The AI app's reaction to a stable study: start the engines its routing rules name."""

from __future__ import annotations

from apps.archive.events import StudyStable, on_study_stable


@on_study_stable("ai.routing")
def route_stable_study(event: StudyStable) -> None:
    # Quick and idempotent: job_start only writes rows and queues the run after the commit, and
    # joins or reuses an existing job of the same engine version on the study.
    from apps.ai.services import jobs_route_study

    jobs_route_study(study_instance_uid=event.study_instance_uid)
