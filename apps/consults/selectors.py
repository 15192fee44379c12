"""Consult reads: the clinic's list, the hospital's worklist, details, the patient and study identity
of a consult, the report versions, turnaround figures."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from apps.accounts.models import User
from apps.ai.selectors import triage_flags_for_studies
from apps.archive.models import Series, Study
from apps.consult_routing.models import ConsultRoute, ConsultState
from apps.consults.models import ClinicConsult, ClinicReportVersion, HospitalConsult, ReportVersion
from apps.consults.permissions import READER_ROLES, ConsultAction, role_may
from apps.consults.services import ConsultNotFound
from apps.consults.state_machine import CLOSED_STATES, OPEN_STATES
from apps.dicom.modalities import NON_IMAGE_MODALITIES
from tenants.context import tenant_entered
from tenants.models import Tenant


@dataclass
class ConsultView:
    route: ConsultRoute
    side: str  # 'clinic' or 'hospital'
    clinic_record: ClinicConsult | None = None
    hospital_record: HospitalConsult | None = None
    reports: list[ReportVersion] = field(default_factory=list)
    triage: dict[str, Any] | None = None
    # The clinic's side: every signed version received, oldest (the original) first.
    received_reports: list[ClinicReportVersion] = field(default_factory=list)

    @property
    def signed_reports(self) -> list[ReportVersion]:
        """The hospital's signed versions, the original first (a draft in progress is not one)."""
        return [report for report in self.reports if report.is_signed]

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
        with tenant_entered(clinic_routes[0].clinic):
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
        return ConsultView(route=route, side="clinic", clinic_record=ClinicConsult.objects.filter(route_id=route.pk).first(),
                           received_reports=list(ClinicReportVersion.objects.filter(route_id=route.pk).order_by("version")))
    return ConsultView(
        route=route, side="hospital", hospital_record=HospitalConsult.objects.filter(route_id=route.pk).first(),
        reports=list(ReportVersion.objects.filter(route_id=route.pk).order_by("version")),
        triage=_triage_by_route([route]).get(route.pk),
    )


def delivered_report_versions(route: ConsultRoute) -> list[ClinicReportVersion]:
    """The versions of the consult's report delivered to the clinic (each with its PDF), oldest first,
    read in the clinic's schema (so the hospital's pages can link the PDFs its report was delivered as)."""
    with tenant_entered(route.clinic):
        return list(ClinicReportVersion.objects.filter(route_id=route.pk).exclude(pdf_key="").order_by("version"))


def delivered_report_version(route: ConsultRoute, version: int | None = None) -> ClinicReportVersion | None:
    """One delivered version (None: the latest delivered), or None when it was not delivered."""
    delivered = delivered_report_versions(route)
    if version is None:
        return delivered[-1] if delivered else None
    return next((item for item in delivered if item.version == version), None)


@dataclass(frozen=True)
class StudyIdentity:
    """Who and what a consult's study is, as the reading page shows it above the images."""

    patient_name: str
    patient_id: str
    patient_age: str  # whole years at the study date, '' when the birth date is unknown
    patient_sex: str
    study_date: date | None
    study_description: str
    modalities: tuple[str, ...]
    accession_number: str


def consult_identity(view: ConsultView) -> list[StudyIdentity]:
    """The patient and study identity of each of the consult's studies, read in the clinic's schema
    (where the studies live, through the consult's grant: the route names the studies)."""
    with tenant_entered(view.route.clinic):
        studies = {study.study_instance_uid: study for study in Study.objects.filter(
            study_instance_uid__in=view.route.study_instance_uids, deleted_at__isnull=True)}
    return [
        StudyIdentity(
            patient_name=study.patient_name.replace("^", " ").strip(), patient_id=study.patient_id,
            patient_age=_age(study.patient_birth_date, study.study_date), patient_sex=study.patient_sex,
            study_date=study.study_date, study_description=study.study_description,
            modalities=tuple(study.modalities_in_study), accession_number=study.accession_number,
        )
        for uid in view.route.study_instance_uids if (study := studies.get(uid)) is not None
    ]


@dataclass(frozen=True)
class ResultSeries:
    """A non-image series of the consult's studies (an AI segmentation or structured report, a
    report SR): the reading page lists it, the embedded viewer overlays it."""

    study_instance_uid: str
    series_instance_uid: str
    modality: str
    series_description: str
    number_of_instances: int


def consult_result_series(view: ConsultView) -> list[ResultSeries]:
    """The consult's SEG, SR and other non-image series, read in the clinic's schema."""
    with tenant_entered(view.route.clinic):
        rows = (Series.objects.filter(study__study_instance_uid__in=view.route.study_instance_uids,
                                      study__deleted_at__isnull=True, deleted_at__isnull=True,
                                      modality__in=NON_IMAGE_MODALITIES)
                .order_by("study_id", "series_number", "id")
                .values_list("study__study_instance_uid", "series_instance_uid", "modality", "series_description",
                             "number_of_instances"))
        return [ResultSeries(*row) for row in rows]


def _age(birth: date | None, on: date | None) -> str:
    if birth is None or on is None or on < birth:
        return ""
    return str(on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day)))


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
