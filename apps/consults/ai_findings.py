"""The AI findings of a consult's studies as the hospital's radiologist judges them (the IHE AI
Results Assessment idea, docs/ai.md "Verdicts on AI findings").

The jobs and their findings live in the clinic's schema (the clinic ran the engine on its own
archive); the verdicts live in the hospital's (the reader's judgement, beside HospitalConsult),
keyed by consult, job and the finding's Tracking UID (the one its SEG segment and SR groups carry).
Each verdict is audited in both tenants. Signing a report freezes the verdicts of that moment into
the signed version (`ReportVersion.ai_finding_verdicts`, written by `report_sign`); per engine, the hospital counts how often its findings
were accepted, rejected or edited.

The findings are read through the consult's grant: only while the hospital may read the images.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count

from apps.ai.selectors import findings_of_studies
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record
from apps.consult_routing.models import ConsultRoute
from apps.consults.grants import ConsultGrantNotFound, grant_is_live
from apps.consults.models import AIFindingVerdict, FindingVerdict
from apps.consults.services import ConsultNotFound, NotYourConsult
from apps.core.errors import InvalidInput, NotFound
from tenants.context import current_tenant, tenant_entered

# Largest plausible edited diameter of a pulmonary finding (a mass over 3 cm is still below it).
MAX_EDITED_DIAMETER_MM = 300.0


class AIFindingNotFound(NotFound):
    code = "ai_finding_not_found"


@dataclass(frozen=True)
class AIFindingView:
    """One finding of an AI job on the consult's studies, with the hospital's verdict if any."""

    finding: dict[str, Any]
    verdict: AIFindingVerdict | None

    @property
    def job_id(self) -> str:
        return str(self.finding["job_id"])

    @property
    def tracking_uid(self) -> str:
        return str(self.finding["tracking_uid"])

    def as_json(self) -> dict[str, Any]:
        return {**self.finding, "verdict": None if self.verdict is None else self.verdict.as_json()}


def _hospital_route(route_id: uuid.UUID | str) -> ConsultRoute:
    route = ConsultRoute.objects.select_related("clinic", "hospital").filter(
        pk=route_id, hospital=current_tenant()).first()
    if route is None:
        raise ConsultNotFound("No such consult for this tenant.")
    return route


def _clinic_findings(route: ConsultRoute) -> list[dict[str, Any]]:
    with tenant_entered(route.clinic):
        return findings_of_studies(route.study_instance_uids)


def consult_ai_findings(*, route_id: uuid.UUID | str) -> list[AIFindingView]:
    """The consult's AI findings with their verdicts; none once (or before) the grant allows no read."""
    route = _hospital_route(route_id)
    if not grant_is_live(route):
        return []
    findings = _clinic_findings(route)
    verdicts = {(str(verdict.job_id), verdict.tracking_uid): verdict
                for verdict in AIFindingVerdict.objects.filter(route_id=route.pk)}
    return [AIFindingView(finding=finding, verdict=verdicts.get((finding["job_id"], finding["tracking_uid"])))
            for finding in findings]


def finding_verdict_record(
    *, route_id: uuid.UUID | str, job_id: uuid.UUID | str, tracking_uid: str, actor: Actor, radiologist: str,
    verdict: str, edited_long_axis_mm: float | None = None, edited_location: str = "", comment: str = "",
) -> AIFindingVerdict:
    """Record (or replace) the radiologist's verdict on one finding, audited in the hospital and the clinic.

    Only the radiologist who claimed the consult judges its findings, while the grant is live; an
    ``edit`` names what the radiologist measured or located instead (a diameter, a location, or both)."""
    if verdict not in FindingVerdict.values:
        raise InvalidInput(f"verdict must be one of {', '.join(FindingVerdict.values)}.", code="invalid_verdict")
    if verdict == FindingVerdict.EDIT:
        if edited_long_axis_mm is None and not edited_location.strip():
            raise InvalidInput("An edit names the corrected diameter or location.", code="edit_without_values")
        if edited_long_axis_mm is not None and not 0 < edited_long_axis_mm <= MAX_EDITED_DIAMETER_MM:
            raise InvalidInput(f"The edited diameter must be above 0 and at most {MAX_EDITED_DIAMETER_MM:.0f} mm.",
                               code="invalid_diameter")
    else:
        edited_long_axis_mm, edited_location = None, ""
    route = _hospital_route(route_id)
    if not grant_is_live(route):
        raise ConsultGrantNotFound("No consult of this hospital grants a read of these images now.")
    if route.claimed_by != radiologist:
        raise NotYourConsult("Only the radiologist who claimed this consult judges its AI findings.")
    finding = next((item for item in _clinic_findings(route)
                    if item["job_id"] == str(job_id) and item["tracking_uid"] == tracking_uid), None)
    if finding is None:
        raise AIFindingNotFound("This consult's studies have no such AI finding.")
    with transaction.atomic():
        previous = (AIFindingVerdict.objects.select_for_update()
                    .filter(route_id=route.pk, job_id=job_id, tracking_uid=tracking_uid).first())
        recorded, _ = AIFindingVerdict.objects.update_or_create(
            route_id=route.pk, job_id=job_id, tracking_uid=tracking_uid,
            defaults={"finding_number": int(finding["number"]), "engine_name": finding["engine_name"],
                      "engine_version": finding["engine_version"], "verdict": verdict,
                      "edited_long_axis_mm": edited_long_axis_mm, "edited_location": edited_location[:200],
                      "comment": comment, "radiologist": radiologist},
        )
        detail = {"consult": str(route.pk), "job": str(job_id), "tracking_uid": tracking_uid,
                  "finding": finding["number"], "engine": finding["engine_name"],
                  "engine_version": finding["engine_version"], "verdict": verdict,
                  "previous_verdict": previous.verdict if previous else None,
                  "edited_long_axis_mm": edited_long_axis_mm, "edited_location": edited_location[:200]}
        audit_record(action=AuditAction.AI_FINDING_VERDICT, actor=actor, object_type="consult", object_id=route.pk,
                     detail=detail)
        with tenant_entered(route.clinic):
            audit_record(action=AuditAction.AI_FINDING_VERDICT, actor=actor, object_type="ai_job", object_id=job_id,
                         detail={**detail, "by_tenant": route.hospital.slug})
    return recorded


def engine_acceptance() -> list[dict[str, Any]]:
    """Per engine and version, how many of its findings this hospital's radiologists accepted,
    rejected and edited, and the share accepted as they stood (accepted / judged)."""
    rows = (AIFindingVerdict.objects.values("engine_name", "engine_version", "verdict")
            .annotate(count=Count("pk")).order_by("engine_name", "engine_version", "verdict"))
    engines: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        entry = engines.setdefault((row["engine_name"], row["engine_version"]), {
            "engine_name": row["engine_name"], "engine_version": row["engine_version"],
            **{value: 0 for value in FindingVerdict.values}})
        entry[row["verdict"]] = row["count"]
    for entry in engines.values():
        judged = sum(entry[value] for value in FindingVerdict.values)
        entry["judged"] = judged
        entry["acceptance_rate"] = round(entry[FindingVerdict.ACCEPT] / judged, 3) if judged else None
    return list(engines.values())
