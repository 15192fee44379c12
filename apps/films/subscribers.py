"""A delivered consult report makes (or re-makes, after an addendum) the patient's film."""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps

from apps.audit.services import Actor


def film_from_consult(event: Any) -> None:
    """`event` is an apps.consults.events.ConsultDelivered: film the first study with the report's key images."""
    from apps.films.services import film_request

    report = event.report
    versions = [*event.earlier_reports, report]
    film_request(
        study_instance_uid=event.study_instance_uids[0], actor=Actor.system("film"), requested_by="consult",
        key_image_sop_instance_uids=event.key_image_sop_instance_uids, consult_id=event.consult_id,
        report={"findings": report.findings, "impression": report.impression,
                "recommendations": report.recommendations, "signed_by": report.signed_by,
                "signed_at": report.signed_at.isoformat(), "hospital_name": report.hospital_name,
                # Every signed version, the original first: an addendum is shown after it, never instead.
                "versions": [{"version": version.version, "is_addendum": version.is_addendum,
                              "findings": version.findings, "impression": version.impression,
                              "recommendations": version.recommendations, "signed_by": version.signed_by,
                              "signed_at": version.signed_at.strftime("%Y-%m-%d %H:%M")} for version in versions]},
        report_pdf_key=event.report_pdf_key,
    )


if django_apps.is_installed("apps.consults"):
    from apps.consults.events import on_consult_delivered

    on_consult_delivered("films.from_consult")(film_from_consult)
