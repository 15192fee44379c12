"""The whole consult over HTTP with real workers: the clinic uploads and asks, the hospital accepts,
assigns, reads through the grant and signs; the clinic's archive then holds the report as an SR
series and a PDF, and both audit trails tell the story."""

from __future__ import annotations

import io

import pydicom
import pytest

from apps.audit.models import AuditEvent
from apps.consult_routing.models import ConsultRoute
from tests.consults.support import (
    CONSULTS,
    act,
    clinic_study,
    consult_in_reading,
    wait_for_state,
    write_report,
)
from tests.support.dicomweb import qido


@pytest.fixture(scope="module")
def delivered(platform, workers):
    study = clinic_study(platform)
    consult_id = consult_in_reading(platform, study)
    hospital = platform.http("hospital_b", "radiologist")
    root = f"/consults/{consult_id}/dicomweb"
    metadata = hospital.get(f"{root}/studies/{study.study_instance_uid}/metadata",
                            headers={"Accept": "application/dicom+json"})
    key_image = study.sop_instance_uids[1]
    rendered = hospital.get(f"{root}/studies/{study.study_instance_uid}/series/{study.series_instance_uids[0]}"
                            f"/instances/{key_image}/rendered", headers={"Accept": "image/jpeg"})
    saved = write_report(platform, consult_id, key_images=[key_image])
    signed = act(platform, "hospital_b", "radiologist", consult_id, "sign")
    final = wait_for_state(platform, consult_id, "delivered")
    return {"study": study, "id": consult_id, "metadata": metadata, "rendered": rendered, "saved": saved,
            "signed": signed, "final": final, "key_image": key_image}


def test_the_hospital_reads_the_consults_study_through_the_grant(delivered):
    assert delivered["metadata"].status_code == 200, delivered["metadata"].text
    assert len(delivered["metadata"].json()) == 3
    assert delivered["rendered"].status_code == 200
    assert delivered["rendered"].headers["Content-Type"] == "image/jpeg"


def test_signing_records_who_when_and_a_content_hash(platform, delivered):
    assert delivered["signed"].status_code == 200, delivered["signed"].text
    report = delivered["signed"].json()["reports"][-1]
    assert report["kind"] == "final"
    assert report["signed_by"] == "radiologist-user"
    assert report["signed_at"]
    assert len(report["content_sha256"]) == 64


def test_the_clinic_receives_the_signed_report(delivered):
    final = delivered["final"]
    assert final["report"]["findings"] == "A 9 mm solid nodule in the right upper lobe."
    assert final["report"]["key_image_sop_instance_uids"] == [delivered["key_image"]]
    assert final["report_pdf_available"] is True
    assert final["report_sr_sop_instance_uid"]


def test_the_report_sr_appears_in_the_clinics_qido_as_a_new_sr_series(platform, delivered):
    response = qido(platform.http("clinic_a", "referring_physician"),
                    f"/studies/{delivered['study'].study_instance_uid}/series")
    modalities = sorted(item["00080060"]["Value"][0] for item in response.json())
    assert modalities == ["CT", "SR"]


def test_the_stored_sr_references_the_study_and_holds_the_report_text(platform, delivered):
    study = delivered["study"]
    http = platform.http("clinic_a", "referring_physician")
    series = qido(http, f"/studies/{study.study_instance_uid}/series", params={"Modality": "SR"}).json()
    series_uid = series[0]["0020000E"]["Value"][0]
    response = http.get(f"/dicomweb/studies/{study.study_instance_uid}/series/{series_uid}",
                        headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert response.status_code == 200
    body = response.content
    start = body.index(b"DICM") - 128
    sr = pydicom.dcmread(io.BytesIO(body[start:]))
    assert sr.StudyInstanceUID == study.study_instance_uid
    assert sr.SOPInstanceUID == delivered["final"]["report_sr_sop_instance_uid"]
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "VERIFIED"
    texts = [item.get("TextValue") for item in sr.ContentSequence if "TextValue" in item]
    assert "Indeterminate nodule." in texts
    images = [item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
              for item in sr.ContentSequence if item.ValueType == "IMAGE"]
    assert images == [delivered["key_image"]]


def test_the_clinic_downloads_the_report_pdf(platform, delivered):
    response = platform.http("clinic_a", "referring_physician").get(f"{CONSULTS}{delivered['id']}/report.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert response.headers["Cache-Control"] == "private, no-store"


def test_both_audit_trails_tell_the_story(platform, delivered):
    with platform.schema("clinic_a"):
        clinic = list(AuditEvent.objects.filter(object_id=delivered["id"]).values_list("action", flat=True))
    with platform.schema("hospital_b"):
        hospital = list(AuditEvent.objects.filter(object_id=delivered["id"]).values_list("action", flat=True))
    for action in ["consult.create", "consult.submit", "consult.accept", "consult.claim", "consult.grant_read",
                   "consult.sign", "consult.report_received", "consult.deliver"]:
        assert action in clinic, action
    for action in ["consult.submit", "consult.accept", "consult.assign", "consult.claim", "consult.grant_read",
                   "consult.save_draft", "consult.sign", "consult.deliver"]:
        assert action in hospital, action


def test_the_grant_ends_after_the_grace_period_of_a_closed_consult(platform, delivered):
    study = delivered["study"]
    hospital = platform.http("hospital_b", "radiologist")
    path = f"/consults/{delivered['id']}/dicomweb/studies/{study.study_instance_uid}/metadata"
    assert hospital.get(path).status_code == 200  # delivered, within the grace period
    from django.utils import timezone

    with platform.schema():
        ConsultRoute.objects.filter(pk=delivered["id"]).update(grant_expires_at=timezone.now())
    assert hospital.get(path).status_code == 404


def test_turnaround_figures_count_the_delivered_consult(platform, delivered):
    clinic = platform.http("clinic_a", "clinic_admin").get(f"{CONSULTS}turnaround/").json()
    assert clinic["by_state"]["delivered"] >= 1
    assert any(row["hospital"] == "test-hospital-b" and row["delivered"] >= 1 for row in clinic["per_hospital"])
    hospital = platform.http("hospital_b", "hospital_admin").get(f"{CONSULTS}turnaround/").json()
    assert any(row["clinic"] == "test-clinic-a" for row in hospital["per_clinic"])
