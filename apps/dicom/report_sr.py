"""A signed consult report as a DICOM Comprehensive SR (PS3.3 A.35.3), built with highdicom.

The content tree follows the shape of TID 2000 (Basic Diagnostic Imaging Report): a root container
"Diagnostic imaging report" holding Findings, Impression and Recommendation text items and the key
images as IMAGE references. The SR joins the source study (its Patient and General Study modules
come from the evidence) as a new series; its Current Requested Procedure Evidence Sequence lists the
referenced instances. Date and time attributes come from the signing time, so building the same
signed report twice gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import ComprehensiveSRStorage

DIAGNOSTIC_IMAGING_REPORT = Code("18748-4", "LN", "Diagnostic imaging report")
FINDINGS = Code("121070", "DCM", "Findings")
FINDING = Code("121071", "DCM", "Finding")
IMPRESSION = Code("121073", "DCM", "Impression")
RECOMMENDATION = Code("121075", "DCM", "Recommendation")
KEY_IMAGE = Code("121200", "DCM", "Illustration of Finding")

# Type 2 attributes of the Patient and General Study modules (PS3.3 C.7.1.1, C.7.2.1) that the SR
# copies from its evidence. Type 2 means present but possibly empty, and real studies often lack
# them altogether (StudyID most of all): a missing one is carried into the SR as an empty value.
_TYPE_2_COPIED_FROM_EVIDENCE = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "AccessionNumber",
    "StudyID", "ReferringPhysicianName",
)


@dataclass(frozen=True)
class SignedReport:
    findings: str
    impression: str
    recommendations: str
    signed_by: str
    signed_at: datetime
    institution_name: str
    version: int
    is_addendum: bool = False


@dataclass(frozen=True)
class SrReference:
    """An earlier SR of the same report (an addendum names the versions it follows)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


def build_report_sr(
    *,
    report: SignedReport,
    source_datasets: Sequence[Dataset],
    key_image_sop_instance_uids: Sequence[str],
    series_instance_uid: str,
    sop_instance_uid: str,
    predecessor_documents: Sequence[SrReference] = (),
) -> hd.sr.ComprehensiveSR:
    """The SR for `report`; `source_datasets` are headers of the study's instances (at least one; every
    key image among them). An addendum lists the SRs of the versions before it in its Predecessor
    Documents Sequence (PS3.3 C.17.2, SR Document General Module)."""
    if not source_datasets:
        raise ValueError("An SR needs at least one instance of the source study as evidence.")
    by_uid = {str(dataset.SOPInstanceUID): dataset for dataset in source_datasets}
    missing = [uid for uid in key_image_sop_instance_uids if uid not in by_uid]
    if missing:
        raise ValueError(f"Key images not in the evidence: {', '.join(missing)}")

    root = hd.sr.ContainerContentItem(name=DIAGNOSTIC_IMAGING_REPORT, template_id="2000")
    children: list[hd.sr.ContentItem] = []
    findings = hd.sr.ContainerContentItem(name=FINDINGS, relationship_type="CONTAINS")
    findings.ContentSequence = hd.sr.ContentSequence([
        hd.sr.TextContentItem(name=FINDING, value=report.findings or "-", relationship_type="CONTAINS"),
    ])
    children.append(findings)
    if report.impression:
        children.append(hd.sr.TextContentItem(name=IMPRESSION, value=report.impression, relationship_type="CONTAINS"))
    if report.recommendations:
        children.append(hd.sr.TextContentItem(
            name=RECOMMENDATION, value=report.recommendations, relationship_type="CONTAINS",
        ))
    for uid in key_image_sop_instance_uids:
        children.append(hd.sr.ImageContentItem(
            name=KEY_IMAGE, referenced_sop_class_uid=by_uid[uid].SOPClassUID, referenced_sop_instance_uid=uid,
            relationship_type="CONTAINS",
        ))
    root.ContentSequence = hd.sr.ContentSequence(children)

    key_images = [by_uid[uid] for uid in key_image_sop_instance_uids]
    evidence = [_with_type_2_attributes(dataset) for dataset in key_images or [source_datasets[0]]]
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=root,
        series_instance_uid=series_instance_uid,
        series_number=900 + report.version,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer="Imaging Cloud",
        is_complete=True,
        is_final=True,
        is_verified=True,
        institution_name=report.institution_name[:64],
        verifying_observer_name=_person_name(report.signed_by),
        verifying_organization=report.institution_name[:64],
        previous_versions=[_sr_header(reference) for reference in predecessor_documents] or None,
    )
    stamp_date, stamp_time = report.signed_at.strftime("%Y%m%d"), report.signed_at.strftime("%H%M%S")
    sr.SeriesDescription = "Consult report addendum" if report.is_addendum else "Consult report"
    for keyword in ("ContentDate", "SeriesDate", "InstanceCreationDate"):
        setattr(sr, keyword, stamp_date)
    for keyword in ("ContentTime", "SeriesTime", "InstanceCreationTime"):
        setattr(sr, keyword, stamp_time)
    for item in sr.VerifyingObserverSequence:
        item.VerificationDateTime = report.signed_at.strftime("%Y%m%d%H%M%S")
    return sr


def _sr_header(reference: SrReference) -> Dataset:
    header = Dataset()
    header.StudyInstanceUID = reference.study_instance_uid
    header.SeriesInstanceUID = reference.series_instance_uid
    header.SOPInstanceUID = reference.sop_instance_uid
    header.SOPClassUID = ComprehensiveSRStorage  # what build_report_sr makes
    return header


def _with_type_2_attributes(source: Dataset) -> Dataset:
    """A header copy of `source` in which every Type 2 attribute the SR copies is present (empty
    when the source lacks it); `source` itself is left as it is."""
    header = Dataset()
    for element in source:
        if element.keyword != "PixelData":
            header.add(element)
    for keyword in _TYPE_2_COPIED_FROM_EVIDENCE:
        if keyword not in header:
            setattr(header, keyword, "")
    return header


def _person_name(username: str) -> str:
    # A DICOM PN needs family^given; a username is kept whole as the family name component.
    return username.replace("^", " ")[:64]


def report_sr_bytes(sr: Dataset) -> bytes:
    buffer = io.BytesIO()
    sr.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
