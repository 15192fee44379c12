"""The consult report as a printable PDF (reportlab), one document per signed version.

An addendum's PDF reads as radiology addenda do: the addendum on top, marked ADDENDUM, then every
earlier version unchanged (newest first, the original report last), so the document a reader holds
never hides what was signed before."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle


@dataclass(frozen=True)
class EarlierVersion:
    """A version signed before the one the document is made for."""

    version: int
    is_addendum: bool
    findings: str
    impression: str
    recommendations: str
    signed_by: str
    signed_at: str


def version_heading(version: int, is_addendum: bool) -> str:
    """'Original report (version 1)' or 'Addendum 2 (version 3)': version 1 is the original, each later one an addendum."""
    return f"Addendum {version - 1} (version {version})" if is_addendum else f"Original report (version {version})"


@dataclass(frozen=True)
class ReportDocument:
    hospital_name: str
    clinic_name: str
    patient_name: str
    patient_id: str
    study_date: str
    study_description: str
    modalities: str
    clinical_question: str
    findings: str
    impression: str
    recommendations: str
    key_image_sop_instance_uids: Sequence[str]
    signed_by: str
    signed_at: str
    version: int
    is_addendum: bool
    content_sha256: str
    earlier_versions: Sequence[EarlierVersion] = ()  # newest first


def report_pdf_bytes(document: ReportDocument) -> bytes:
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    title = "Consultation report" + (f" — addendum (version {document.version})" if document.is_addendum else "")
    pdf = SimpleDocTemplate(buffer, pagesize=A4, title=title, author=document.hospital_name,
                            leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm, bottomMargin=16 * mm,
                            invariant=True)
    header = Table(
        [
            ["Patient", document.patient_name, "Patient ID", document.patient_id],
            ["Study date", document.study_date, "Modality", document.modalities],
            ["Study", document.study_description, "Requested by", document.clinic_name],
        ],
        colWidths=[28 * mm, 60 * mm, 28 * mm, 58 * mm],
    )
    header.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"), ("FONTNAME", (2, 0), (2, -1), "Helvetica-Bold"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("FONTSIZE", (0, 0), (-1, -1), 9),
    ]))
    story: list[Flowable] = [Paragraph(escape(document.hospital_name), styles["Title"]),
                             Paragraph(escape(title), styles["Heading2"]),
                             header, Spacer(1, 6 * mm)]
    if document.clinical_question:
        story += _section("Clinical question", document.clinical_question, styles)
    if document.is_addendum:
        story.append(Paragraph(escape(f"ADDENDUM — {version_heading(document.version, True)}"), styles["Heading2"]))
    story += _report_body(document.findings, document.impression, document.recommendations, styles)
    if document.key_image_sop_instance_uids:
        story.append(Paragraph("Key images (SOP Instance UID)", styles["Heading3"]))
        story.extend(Paragraph(escape(uid), styles["Code"]) for uid in document.key_image_sop_instance_uids)
    story += [
        Spacer(1, 4 * mm),
        Paragraph(escape(f"Electronically signed by {document.signed_by} at {document.signed_at}."), styles["BodyText"]),
        Paragraph(escape(f"Content SHA-256: {document.content_sha256}"), styles["Code"]),
    ]
    for earlier in document.earlier_versions:
        story += [Spacer(1, 8 * mm),
                  Paragraph(escape(version_heading(earlier.version, earlier.is_addendum)), styles["Heading2"])]
        story += _report_body(earlier.findings, earlier.impression, earlier.recommendations, styles)
        story.append(Paragraph(escape(f"Electronically signed by {earlier.signed_by} at {earlier.signed_at}."),
                               styles["BodyText"]))
    pdf.build(story)
    return buffer.getvalue()


def _section(heading: str, text: str, styles: StyleSheet1) -> list[Flowable]:
    return [Paragraph(heading, styles["Heading3"]),
            *(Paragraph(escape(line), styles["BodyText"]) for line in text.splitlines() if line.strip())]


def _report_body(findings: str, impression: str, recommendations: str, styles: StyleSheet1) -> list[Flowable]:
    story: list[Flowable] = []
    for heading, text in [("Findings", findings), ("Impression", impression), ("Recommendations", recommendations)]:
        if text:
            story += _section(heading, text, styles)
    return story
