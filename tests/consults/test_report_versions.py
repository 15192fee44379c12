"""Report versions: an addendum is a new signed version that never replaces the original. The clinic
keeps every delivered version with its own PDF (`GET …/report.pdf?version=N`, the latest by default),
an addendum's PDF shows the addendum (marked ADDENDUM) above the original, its SR names the
original's SR in the Predecessor Documents Sequence (PS3.3 C.17.2), and the patient's film shows
the original followed by the addendum."""

from __future__ import annotations

import io
import re

import pydicom
import pytest
from pypdf import PdfReader

from apps.archive.models import Instance
from apps.films.models import Film
from apps.storage.tenant_storage import storage_for
from tests.consults.support import (
    CONSULTS,
    RADIOLOGIST,
    act,
    clinic_study,
    consult_in_reading,
    consult_state,
    write_report,
)
from tests.films.support import enter_code, issue_link, patient
from tests.support.platform import wait_until

ORIGINAL_FINDINGS = "A 9 mm solid nodule in the right upper lobe."
ADDENDUM_FINDINGS = "On review the nodule is calcified and benign."


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(data)).pages)


def _versions_delivered(platform, consult_id: str, count: int) -> dict:
    def delivered() -> dict | None:
        body = consult_state(platform, consult_id)
        versions = body.get("report_versions") or []
        ready = body["state"] == "delivered" and len(versions) == count and all(item["pdf"] for item in versions)
        return body if ready else None
    return wait_until(delivered, timeout=90, message=f"consult {consult_id} to have {count} delivered versions")


@pytest.fixture(scope="module")
def amended(platform, workers):
    """A consult signed, delivered, then amended and delivered again."""
    study = clinic_study(platform, slices=2)
    consult_id = consult_in_reading(platform, study)
    assert write_report(platform, consult_id, key_images=[study.sop_instance_uids[0]]).status_code == 200
    assert act(platform, "hospital_b", "radiologist", consult_id, "sign").status_code == 200
    _versions_delivered(platform, consult_id, 1)
    addendum = act(platform, "hospital_b", "radiologist", consult_id, "amend", {
        "findings": ADDENDUM_FINDINGS, "impression": "Benign calcified granuloma.", "recommendations": "",
        "key_image_sop_instance_uids": [study.sop_instance_uids[1]]})
    assert addendum.status_code == 200, addendum.text
    return consult_id, study, _versions_delivered(platform, consult_id, 2)


def _pdf(platform, consult_id: str, query: str = "") -> bytes:
    answer = platform.http("clinic_a", "referring_physician").get(f"{CONSULTS}{consult_id}/report.pdf{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/pdf"
    return answer.content


def test_the_clinic_keeps_the_original_and_the_addendum_as_two_versions(amended):
    consult_id, study, body = amended
    versions = body["report_versions"]
    assert [(item["version"], item["kind"], item["signed_by"]) for item in versions] == [
        (1, "final", RADIOLOGIST), (2, "addendum", RADIOLOGIST)]
    assert versions[0]["findings"] == ORIGINAL_FINDINGS
    assert versions[1]["findings"] == ADDENDUM_FINDINGS
    assert [item["pdf"] for item in versions] == [f"{CONSULTS}{consult_id}/report.pdf?version=1",
                                                  f"{CONSULTS}{consult_id}/report.pdf?version=2"]
    assert body["report"]["version"] == 2  # the latest, as before


def test_each_version_has_its_own_pdf_and_the_latest_is_the_default(platform, amended):
    consult_id, _, _ = amended
    original, addendum, default = (_pdf(platform, consult_id, "?version=1"), _pdf(platform, consult_id, "?version=2"),
                                   _pdf(platform, consult_id))
    assert original != addendum
    assert default == addendum
    original_text, addendum_text = pdf_text(original), pdf_text(addendum)
    assert ORIGINAL_FINDINGS in original_text
    assert "ADDENDUM" not in original_text and ADDENDUM_FINDINGS not in original_text
    # The addendum on top, marked ADDENDUM, then the original report unchanged.
    assert "ADDENDUM — Addendum 1 (version 2)" in addendum_text
    assert addendum_text.index(ADDENDUM_FINDINGS) < addendum_text.index("Original report (version 1)") \
        < addendum_text.index(ORIGINAL_FINDINGS)


def test_the_hospital_downloads_the_same_pdfs_its_report_was_delivered_as(platform, amended):
    consult_id, _, _ = amended
    for version in (1, 2):
        answer = platform.http("hospital_b", "radiologist").get(f"{CONSULTS}{consult_id}/report.pdf?version={version}")
        assert answer.status_code == 200, answer.text
        assert answer.content == _pdf(platform, consult_id, f"?version={version}")


def test_a_version_not_delivered_is_404_and_a_malformed_one_400(platform, amended):
    consult_id, _, _ = amended
    clinic = platform.http("clinic_a", "referring_physician")
    missing = clinic.get(f"{CONSULTS}{consult_id}/report.pdf?version=3")
    assert (missing.status_code, missing.json()["code"]) == (404, "report_not_delivered")
    malformed = clinic.get(f"{CONSULTS}{consult_id}/report.pdf?version=two")
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_version")


def test_the_addendum_sr_names_the_original_sr_as_its_predecessor(platform, amended):
    consult_id, study, body = amended
    storage = storage_for(platform.tenants["clinic_a"])
    with platform.schema("clinic_a"):
        reports = {instance.series.series_description: instance for instance in Instance.objects.select_related(
            "series").filter(study__study_instance_uid=study.study_instance_uid, series__modality="SR")}
        assert sorted(reports) == ["Consult report", "Consult report addendum"]
        addendum_sr = pydicom.dcmread(io.BytesIO(storage.get_bytes(reports["Consult report addendum"].object_key)))
        original_uid = reports["Consult report"].sop_instance_uid
    assert body["report_sr_sop_instance_uid"] == str(addendum_sr.SOPInstanceUID)
    [predecessor] = addendum_sr.PredecessorDocumentsSequence
    assert predecessor.StudyInstanceUID == study.study_instance_uid
    [series] = predecessor.ReferencedSeriesSequence
    assert [item.ReferencedSOPInstanceUID for item in series.ReferencedSOPSequence] == [original_uid]


def test_the_patients_film_shows_the_original_then_the_addendum(platform, amended):
    consult_id, study, _ = amended
    with platform.schema("clinic_a"):
        film = wait_until(lambda: (found := Film.objects.filter(study_instance_uid=study.study_instance_uid).first())
                          and len((found.report or {}).get("versions", [])) == 2 and found,
                          timeout=30, message="the film to carry both report versions")
    assert [(item["version"], item["is_addendum"], item["findings"]) for item in film.report["versions"]] == [
        (1, False, ORIGINAL_FINDINGS), (2, True, ADDENDUM_FINDINGS)]
    link = issue_link(platform, film.pk)
    page = enter_code(patient(platform), link.path, link.code)
    assert page.status_code == 200
    headings = re.findall(r'<section class="report-version" id="report-v(\d)">\s*<h3>([^<]*)</h3>', page.text)
    assert [(number, heading.split(" (")[0]) for number, heading in headings] == [
        ("1", "Original report"), ("2", "Addendum 1")]
    assert page.text.index(ORIGINAL_FINDINGS) < page.text.index(ADDENDUM_FINDINGS)
