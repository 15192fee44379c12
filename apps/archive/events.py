"""The "study stable" event and the registry later capabilities subscribe to it through.

A study is stable once no new instance has arrived for STUDY_STABLE_SECONDS: the modality has
probably finished sending. AI routing and automatic consult requests wait for that moment rather
than reacting to every instance. A subscriber registers once, at import (an AppConfig.ready):

    @on_study_stable("ai.routing")
    def route_to_engines(event: StudyStable) -> None:
        enqueue_on_commit("apps.ai.tasks.ai_jobs_create", tenant=current_tenant(), work=WorkKind.AI, args=(event.study_id,))

Subscribers run inside the transaction that marks the study stable, in the tenant's schema, once per
quiet period (a study that receives new instances becomes unstable and is announced again later).
They must be quick — queue real work with `enqueue_on_commit` — and idempotent; an exception rolls
the marking back, so the study is announced again on the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StudyStable:
    tenant_slug: str
    study_id: int
    study_instance_uid: str
    patient_id: str
    modalities_in_study: tuple[str, ...]
    number_of_series: int
    number_of_instances: int
    stable_at: datetime


StudyStableSubscriber = Callable[[StudyStable], None]

_subscribers: dict[str, StudyStableSubscriber] = {}


def on_study_stable(name: str) -> Callable[[StudyStableSubscriber], StudyStableSubscriber]:
    """Register `function` under `name` (registering a name again replaces the earlier one)."""

    def register(function: StudyStableSubscriber) -> StudyStableSubscriber:
        _subscribers[name] = function
        return function

    return register


def unsubscribe(name: str) -> None:
    _subscribers.pop(name, None)


def study_stable_subscribers() -> list[tuple[str, StudyStableSubscriber]]:
    return list(_subscribers.items())
