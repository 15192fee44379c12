"""Consult reads: the clinic's list, the hospital's worklist, details, turnaround figures."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from apps.accounts.models import User
from apps.ai.selectors import triage_flags_for_studies
from apps.consult_routing.models import ConsultRoute, ConsultState
from apps.consults.grants import in_tenant
from apps.consults.models import ClinicConsult, HospitalConsult, ReportVersion
from apps.consults.permissions import READER_ROLES, ConsultAction, role_may
from apps.consults.services import ConsultNotFound
from apps.consults.state_machine import CLOSED_STATES, OPEN_STATES
from tenants.models import Tenant


@dataclass
class ConsultView:
    route: ConsultRoute
    side: str  # 'clinic' or 'hospital'
    clinic_record: ClinicConsult | None = None
    hospital_record: HospitalConsult | None = None
    reports: list[ReportVersion] = field(default_factory=list)
    triage: dict[str, Any] | None = None

    @property
    def modality_list(self) -> list[str]:
        return self.route.modalities.split("\\") if self.route.modalities else []

    @property
    def patient(self) -> PatientLine:
        """Who the consult is about, from the study summary copied to the hospital at submission."""
        studies = (self.hospital_record.study_summary if self.hospital_record else {}).get("studies") or [{}]
        first = studies[0]
        return PatientLine(
            name=readable_person_name(first.get("patient_name", "")), patient_id=first.get("patient_id", ""), sex=first.get("patient_sex", ""),
            age=first.get("patient_age") or age_at(first.get("patient_birth_date", ""), first.get("study_date", "")),
            body_parts=sorted({part for study in studies for part in study.get("body_parts", [])}),
            description="; ".join(study["study_description"] for study in studies if study.get("study_description")),
        )


@dataclass(frozen=True)
class PatientLine:
    name: str
    patient_id: str
    sex: str
    age: str  # DICOM Age String form (PS3.5 §6.2 AS): "047Y", or "" when unknown
    body_parts: list[str]
    description: str


def readable_person_name(value: str) -> str:
    """A DICOM PN's alphabetic group with its components spaced ("Test^Patient" → "Test Patient")."""
    return " ".join(value.split("=")[0].replace("^", " ").split())


def age_at(birth_date: str, study_date: str) -> str:
    """The patient's age in whole years on the study date (ISO dates), as a DICOM Age String; "" if unknown."""
    try:
        born, studied = date.fromisoformat(birth_date), date.fromisoformat(study_date)
    except ValueError:
        return ""
    years = studied.year - born.year - ((studied.month, studied.day) < (born.month, born.day))
    return f"{years:03d}Y" if years >= 0 else ""


class WorklistSort:
    PRIORITY = "priority"  # priority, then AI triage flag, then SLA due time
    DUE = "due"  # SLA due time, soonest first
    RECEIVED = "received"  # newest submission first
    ALL = (PRIORITY, DUE, RECEIVED)


@dataclass(frozen=True)
class WorklistFilter:
    states: tuple[str, ...] = ()
    priority: str = ""
    modality: str = ""
    clinic_slug: str = ""
    due_before: datetime | None = None
    claimed_by: str = ""
    # Claimed by or assigned to this user.
    mine: str = ""
    sort: str = WorklistSort.PRIORITY


def clinic_consults(*, clinic: Tenant, states: tuple[str, ...] = ()) -> list[ConsultView]:
    routes = ConsultRoute.objects.select_related("clinic", "hospital").filter(clinic=clinic)
    if states:
        routes = routes.filter(state__in=states)
    routes = routes.order_by("-created_at")[:500]
    records = {record.route_id: record for record in ClinicConsult.objects.filter(route_id__in=[r.pk for r in routes])}
    return [ConsultView(route=route, side="clinic", clinic_record=records.get(route.pk)) for route in routes]


def hospital_worklist(*, hospital: Tenant, filters: WorklistFilter) -> list[ConsultView]:
    """Open consults by priority, then AI triage flag (raised first), then SLA due time."""
    routes: QuerySet[ConsultRoute] = ConsultRoute.objects.select_related("clinic", "hospital").filter(
        hospital=hospital).exclude(state=ConsultState.DRAFT)
    if filters.states:
        routes = routes.filter(state__in=filters.states)
    if filters.priority:
        routes = routes.filter(priority=filters.priority)
    if filters.modality:
        routes = routes.filter(Q(modalities=filters.modality) | Q(modalities__startswith=f"{filters.modality}\\")
                               | Q(modalities__endswith=f"\\{filters.modality}")
                               | Q(modalities__contains=f"\\{filters.modality}\\"))
    if filters.clinic_slug:
        routes = routes.filter(clinic__slug=filters.clinic_slug)
    if filters.due_before:
        routes = routes.filter(sla_due_at__lt=filters.due_before)
    if filters.claimed_by:
        routes = routes.filter(claimed_by=filters.claimed_by)
    if filters.mine:
        routes = routes.filter(Q(claimed_by=filters.mine) | Q(assigned_to=filters.mine))
    if filters.sort == WorklistSort.RECEIVED:
        routes = routes.order_by(F("submitted_at").desc(nulls_last=True))
    elif filters.sort == WorklistSort.DUE:
        routes = routes.order_by(F("sla_due_at").asc(nulls_last=True))
    else:
        routes = routes.order_by("priority_rank", F("sla_due_at").asc(nulls_last=True))
    selected = list(routes[:500])
    records = {record.route_id: record for record in HospitalConsult.objects.filter(route_id__in=[r.pk for r in selected])}
    triage = _triage_by_route(selected)
    views = [ConsultView(route=route, side="hospital", hospital_record=records.get(route.pk), triage=triage.get(route.pk))
             for route in selected]
    if filters.sort == WorklistSort.PRIORITY:
        views.sort(key=lambda view: (view.route.priority_rank, not (view.triage or {}).get("flag", False)))
    return views


#: What the worklist page's state filter offers beside single states: open work (its default) and closed.
WORKLIST_STATE_GROUPS: dict[str, frozenset[str]] = {"open": OPEN_STATES, "closed": CLOSED_STATES}


def worklist_badge_count(*, hospital: Tenant, username: str, role: str) -> int:
    """The header badge: consults waiting for a triage decision for those who triage (submitted, not yet
    accepted); for readers, those assigned to them and not yet claimed."""
    routes = ConsultRoute.objects.filter(hospital=hospital)
    if role_may(role, ConsultAction.ACCEPT):
        return routes.filter(state=ConsultState.SUBMITTED).count()
    if role_may(role, ConsultAction.CLAIM):
        return routes.filter(state=ConsultState.ASSIGNED, assigned_to=username).count()
    return 0


def assignable_readers() -> list[User]:
    """The hospital's active users a coordinator may assign a consult to (read in the current schema)."""
    return list(User.objects.filter(role__in=READER_ROLES, is_active=True).order_by("username"))


def _triage_by_route(routes: list[ConsultRoute]) -> dict[uuid.UUID, dict[str, Any]]:
    """AI triage of each consult's studies, read in the clinic's schema where the studies and jobs live."""
    by_clinic: dict[int, list[ConsultRoute]] = defaultdict(list)
    for route in routes:
        by_clinic[route.clinic_id].append(route)
    result: dict[uuid.UUID, dict[str, Any]] = {}
    for clinic_routes in by_clinic.values():
        with in_tenant(clinic_routes[0].clinic):
            flags = triage_flags_for_studies({uid for route in clinic_routes for uid in route.study_instance_uids})
        for route in clinic_routes:
            found = [flags[uid] for uid in route.study_instance_uids if uid in flags]
            if found:
                raised = [flag for flag in found if flag.get("flag")]
                result[route.pk] = (raised or found)[0]
    return result


def consult_view(*, tenant: Tenant, route_id: uuid.UUID | str) -> ConsultView:
    route = ConsultRoute.objects.select_related("clinic", "hospital").filter(
        Q(clinic=tenant) | Q(hospital=tenant), pk=route_id).first()
    if route is None:
        raise ConsultNotFound("No such consult for this tenant.")
    if route.clinic_id == tenant.pk:
        return ConsultView(route=route, side="clinic", clinic_record=ClinicConsult.objects.filter(route_id=route.pk).first())
    return ConsultView(
        route=route, side="hospital", hospital_record=HospitalConsult.objects.filter(route_id=route.pk).first(),
        reports=list(ReportVersion.objects.filter(route_id=route.pk).order_by("version")),
        triage=_triage_by_route([route]).get(route.pk),
    )


def turnaround(*, tenant: Tenant) -> dict[str, Any]:
    """Counts per state and mean minutes submitted → delivered, per counterpart tenant."""
    side, other = ("clinic", "hospital") if tenant.kind == "clinic" else ("hospital", "clinic")
    routes = ConsultRoute.objects.filter(**{side: tenant})
    by_state = dict(routes.values_list("state").annotate(count=Count("pk")).values_list("state", "count"))
    duration = ExpressionWrapper(F("delivered_at") - F("submitted_at"), output_field=DurationField())
    rows = (routes.filter(delivered_at__isnull=False, submitted_at__isnull=False)
            .values(f"{other}__slug").annotate(delivered=Count("pk"), mean=Avg(duration))
            .order_by(f"{other}__slug"))
    per_counterpart = [
        {other: row[f"{other}__slug"], "delivered": row["delivered"],
         "mean_turnaround_minutes": round(row["mean"].total_seconds() / 60, 1) if row["mean"] else None}
        for row in rows
    ]
    overdue = routes.filter(escalated_at__isnull=False).count()
    return {"by_state": by_state, "escalated": overdue, f"per_{other}": per_counterpart}
