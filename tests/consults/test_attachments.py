"""Documents sent with a consult: the clinic adds PDFs; the hospital reads them while it may read
the consult; anything else is refused in the API's error form."""

from __future__ import annotations

import io

import pytest
from reportlab.pdfgen import canvas

from tests.consults.support import CONSULTS, act, clinic_study, consult_request


def _pdf(text: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def _upload(platform, consult_id: str, data: bytes, *, name: str = "letter.pdf", kind: str = "referral_letter",
            tenant: str = "clinic_a", role: str = "referring_physician"):
    return platform.http(tenant, role).post(f"{CONSULTS}{consult_id}/attachments/", data={"kind": kind},
                                            files={"file": (name, data, "application/pdf")})


@pytest.fixture(scope="module")
def consult_id(platform):
    return consult_request(platform, clinic_study(platform, slices=1)).json()["id"]


def test_the_hospital_reads_the_referral_letter_the_clinic_attached(platform, consult_id):
    letter = _pdf("Referral: cough for six weeks.")
    added = _upload(platform, consult_id, letter)
    assert added.status_code == 201, added.text
    listed = platform.http("hospital_b", "consult_coordinator").get(f"{CONSULTS}{consult_id}/attachments/").json()
    assert [(item["kind"], item["filename"]) for item in listed["results"]][-1] == ("referral_letter", "letter.pdf")
    read = platform.http("hospital_b", "consult_coordinator").get(
        f"{CONSULTS}{consult_id}/attachments/{added.json()['id']}/")
    assert read.status_code == 200
    assert read.content == letter
    assert read.headers["Cache-Control"] == "private, no-store"


def test_a_file_that_is_not_a_pdf_is_refused(platform, consult_id):
    response = _upload(platform, consult_id, b"MZ\x90\x00 not a document", name="letter.exe")
    assert response.status_code == 415
    assert response.json()["code"] == "attachment_not_pdf"


def test_an_attachment_over_the_limit_is_refused(platform, consult_id, settings):
    settings.CONSULT_ATTACHMENT_MAX_BYTES = 2048
    response = _upload(platform, consult_id, _pdf("x" * 10) + b"%" + b"0" * 4096)
    assert response.status_code == 413
    assert response.json()["code"] == "attachment_too_large"


def test_a_path_in_the_file_name_is_dropped(platform, consult_id):
    response = _upload(platform, consult_id, _pdf("prior"), name="../../etc/passwd", kind="prior_report")
    assert response.status_code == 201
    assert response.json()["filename"] == "passwd.pdf"


def test_the_hospital_cannot_attach_and_another_clinic_sees_nothing(platform, consult_id):
    assert _upload(platform, consult_id, _pdf("x"), tenant="hospital_b", role="consult_coordinator").status_code == 403
    assert platform.http("clinic_c", "clinic_admin").get(f"{CONSULTS}{consult_id}/attachments/").status_code == 404
    assert _upload(platform, consult_id, _pdf("x"), tenant="clinic_c", role="referring_physician").status_code == 404


def test_after_a_cancelled_consults_grace_the_hospital_reads_no_attachment(platform):
    consult_id = consult_request(platform, clinic_study(platform, slices=1)).json()["id"]
    added = _upload(platform, consult_id, _pdf("letter"))
    assert act(platform, "clinic_a", "referring_physician", consult_id, "cancel").status_code == 200
    from django.utils import timezone

    from apps.consult_routing.models import ConsultRoute

    with platform.schema():
        ConsultRoute.objects.filter(pk=consult_id).update(grant_expires_at=timezone.now())
    response = platform.http("hospital_b", "consult_coordinator").get(
        f"{CONSULTS}{consult_id}/attachments/{added.json()['id']}/")
    assert response.status_code == 404
    assert _upload(platform, consult_id, _pdf("late")).status_code == 409


@pytest.fixture(scope="module")
def submitted_with_letter(platform):
    """A submitted consult (not yet accepted) with a referral letter, and the letter's id."""
    consult = consult_request(platform, clinic_study(platform, slices=1)).json()["id"]
    added = _upload(platform, consult, _pdf("Referral before acceptance."))
    assert added.status_code == 201, added.text
    return consult, added.json()["id"]


def test_a_radiologist_reads_no_document_of_a_consult_not_yet_accepted(platform, submitted_with_letter):
    consult, attachment = submitted_with_letter
    radiologist = platform.http("hospital_b", "radiologist")
    for path in (f"{CONSULTS}{consult}/attachments/", f"{CONSULTS}{consult}/attachments/{attachment}/"):
        response = radiologist.get(path)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "consult_not_accepted"


def test_the_reading_page_of_a_consult_not_yet_accepted_lists_no_document_to_a_radiologist(
        platform, submitted_with_letter):
    from tests.consults.support import RADIOLOGIST
    from tests.support.tenancy import ADMIN_PASSWORD, session_login

    consult, attachment = submitted_with_letter
    client, answer = session_login(platform, platform.host("hospital_b"), username=RADIOLOGIST,
                                   password=ADMIN_PASSWORD)
    assert answer.status_code == 302
    page = client.get(f"/consults/{consult}/")
    assert page.status_code == 200
    assert f"/attachments/{attachment}/" not in page.text


def test_a_radiologist_reads_the_documents_once_the_consult_is_accepted(platform):
    consult = consult_request(platform, clinic_study(platform, slices=1)).json()["id"]
    letter = _pdf("Referral, accepted.")
    attachment = _upload(platform, consult, letter).json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult, "accept").status_code == 200
    read = platform.http("hospital_b", "radiologist").get(f"{CONSULTS}{consult}/attachments/{attachment}/")
    assert read.status_code == 200
    assert read.content == letter
