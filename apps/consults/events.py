"""The "consult delivered" event, and the registry other capabilities subscribe to it through.

Modelled on apps.archive.events: a subscriber registers once, at import (an AppConfig.ready), and is
called in the clinic's schema inside the transaction that marks the consult delivered. It must be
quick (queue real work with `enqueue_on_commit`) and idempotent. The cloud-film capability
registers `films.from_consult` to make the patient's film from the signed report's key images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ReportSnapshot:
    findings: str
    impression: str
    recommendations: str
    signed_by: str
    signed_at: datetime
    hospital_name: str
    modality_template: str
    version: int = 1
    is_addendum: bool = False


@dataclass(frozen=True)
class ConsultDelivered:
    tenant_slug: str  # the clinic
    consult_id: int  # the clinic's ClinicConsult id
    study_instance_uids: tuple[str, ...]
    key_image_sop_instance_uids: tuple[str, ...]
    report: ReportSnapshot
    report_pdf_key: str  # in the clinic tenant's storage; the latest version's (an addendum's shows the original too)
    earlier_reports: tuple[ReportSnapshot, ...] = ()  # the original and earlier addenda, oldest first


ConsultDeliveredSubscriber = Callable[[ConsultDelivered], None]

_subscribers: dict[str, ConsultDeliveredSubscriber] = {}


def on_consult_delivered(name: str) -> Callable[[ConsultDeliveredSubscriber], ConsultDeliveredSubscriber]:
    """Register `function` under `name` (registering a name again replaces the earlier one)."""

    def register(function: ConsultDeliveredSubscriber) -> ConsultDeliveredSubscriber:
        _subscribers[name] = function
        return function

    return register


def unsubscribe(name: str) -> None:
    _subscribers.pop(name, None)


def consult_delivered_subscribers() -> list[tuple[str, ConsultDeliveredSubscriber]]:
    return list(_subscribers.items())
