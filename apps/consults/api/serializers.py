"""Consult API input shapes, and the one function that turns a consult into JSON for either side."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.consult_routing.models import Priority
from apps.consults.grants import consult_service_path
from apps.consults.models import FindingVerdict
from apps.consults.selectors import ConsultView


class ConsultCreateSerializer(serializers.Serializer):
    study_instance_uids = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1, max_length=20)
    hospital = serializers.SlugField(max_length=40)
    clinical_question = serializers.CharField(max_length=4000)
    relevant_history = serializers.CharField(max_length=8000, required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.ROUTINE)
    submit = serializers.BooleanField(default=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class QuestionSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=4000)


class AnswerSerializer(serializers.Serializer):
    answer = serializers.CharField(max_length=8000)


class AssignSerializer(serializers.Serializer):
    radiologist = serializers.CharField(max_length=150)


class ReportSerializer(serializers.Serializer):
    findings = serializers.CharField(max_length=20000, allow_blank=True)
    impression = serializers.CharField(max_length=8000, allow_blank=True)
    recommendations = serializers.CharField(max_length=8000, required=False, allow_blank=True, default="")
    key_image_sop_instance_uids = serializers.ListField(
        child=serializers.RegexField(r"^[0-9]+(\.[0-9]+)*$", max_length=64), required=False, default=list, max_length=50,
    )
    modality_template = serializers.CharField(max_length=16, required=False)
    preliminary = serializers.BooleanField(default=False)


def consult_json(view: ConsultView) -> dict[str, Any]:
    route = view.route
    body: dict[str, Any] = {
        "id": str(route.pk), "state": route.state, "priority": route.priority,
        "clinic": route.clinic.slug, "hospital": route.hospital.slug,
        "study_instance_uids": route.study_instance_uids, "modalities": route.modalities.split("\\") if route.modalities else [],
        "assigned_to": route.assigned_to, "claimed_by": route.claimed_by, "report_version": route.report_version,
        "sla_due_at": route.sla_due_at, "escalated": route.escalated_at is not None,
        "created_at": route.created_at, "submitted_at": route.submitted_at, "accepted_at": route.accepted_at,
        "finalized_at": route.finalized_at, "delivered_at": route.delivered_at,
        "delivery_failure": route.delivery_failure or None, "delivery_failed_at": route.delivery_failed_at,
    }
    if view.clinic_record is not None:
        record = view.clinic_record
        body.update({
            "clinical_question": record.clinical_question, "relevant_history": record.relevant_history,
            "requested_by": record.requested_by, "report": record.report,
            "report_sr_sop_instance_uid": record.report_sr_sop_instance_uid or None,
            "report_pdf_available": bool(record.report_pdf_key),
            # Every signed version received, the original first; each delivered one has its own PDF.
            "report_versions": [{
                "version": received.version, "kind": received.kind, "signed_by": received.report.get("signed_by"),
                "signed_at": received.report.get("signed_at"), "findings": received.report.get("findings"),
                "impression": received.report.get("impression"),
                "recommendations": received.report.get("recommendations"),
                "pdf": f"/api/v1/consults/{route.pk}/report.pdf?version={received.version}" if received.pdf_key else None,
            } for received in view.received_reports],
            "hospital_question": record.hospital_question or None, "reject_reason": record.reject_reason or None,
        })
    if view.hospital_record is not None:
        worklist_entry = view.hospital_record
        body.update({
            "clinical_question": worklist_entry.clinical_question,
            "relevant_history": worklist_entry.relevant_history, "clinic_name": worklist_entry.clinic_name,
            "studies": worklist_entry.study_summary.get("studies", []),
            "return_question": worklist_entry.return_question, "reject_reason": worklist_entry.reject_reason,
            "triage": view.triage,
            # Where a viewer reads the consult's images (on the hospital's domain, docs/consults.md).
            "dicomweb_root": consult_service_path(route.pk),
        })
    if view.reports:
        body["reports"] = [{
            "version": report.version, "kind": report.kind, "modality_template": report.modality_template,
            "findings": report.findings, "impression": report.impression, "recommendations": report.recommendations,
            "key_image_sop_instance_uids": report.key_image_sop_instance_uids, "author": report.author,
            "signed_by": report.signed_by or None, "signed_at": report.signed_at,
            "content_sha256": report.content_sha256 or None,
        } for report in view.reports]
    return body


class FindingVerdictSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=FindingVerdict.choices)
    edited_long_axis_mm = serializers.FloatField(required=False, allow_null=True, default=None)
    edited_location = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
