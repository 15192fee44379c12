"""WADO-URI (PS3.18 §9) under the tenant's DICOMweb root: one instance as DICOM or rendered, with the
roles, audit and errors of WADO-RS."""

from __future__ import annotations

import io

import pydicom
import pytest
from PIL import Image

from tests.factories.dicom_factory import make_multiframe, to_part10_bytes
from tests.support.dicomweb import ct_study, stow, unique_patient_id

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def ct(platform):
    study = ct_study(1, size=64)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    return study


def wado(platform, study, role: str = "referring_physician", tenant: str = "clinic_a", **parameters):
    dataset = study.datasets[0]
    query = {"requestType": "WADO", "studyUID": study.study_instance_uid,
             "seriesUID": str(dataset.SeriesInstanceUID), "objectUID": str(dataset.SOPInstanceUID), **parameters}
    return platform.http(tenant, role).get("/dicomweb/wado", params={k: v for k, v in query.items() if v is not None})


def test_a_single_frame_image_is_a_jpeg_by_default_ps3_18_9(platform, ct):
    response = wado(platform, ct)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (64, 64)


def test_content_type_application_dicom_is_the_instance_in_explicit_vr_little_endian_ps3_18_9_4(platform, ct):
    response = wado(platform, ct, contentType="application/dicom")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == f"application/dicom; transfer-syntax={EXPLICIT_LITTLE}"
    assert response.content == ct.files[0]


def test_a_multiframe_instance_is_application_dicom_by_default_ps3_18_9(platform):
    dataset = make_multiframe(number_of_frames=3, patient_id=unique_patient_id())
    data = to_part10_bytes(dataset)
    assert stow(platform.http("clinic_a", "technologist"), [data]).status_code == 200
    study = type("One", (), {"study_instance_uid": dataset.StudyInstanceUID, "datasets": [dataset]})

    response = wado(platform, study)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/dicom")
    assert pydicom.dcmread(io.BytesIO(response.content)).SOPInstanceUID == dataset.SOPInstanceUID
    frame = wado(platform, study, contentType="image/png", frameNumber="2")
    assert (frame.status_code, frame.headers["Content-Type"]) == (200, "image/png")


def test_rendering_parameters_shape_the_image_ps3_18_9_5(platform, ct):
    response = wado(platform, ct, contentType="image/png", rows="32", columns="32", windowCenter="40",
                    windowWidth="400")

    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (32, 32)


@pytest.mark.parametrize(
    ("parameters", "code"),
    [
        ({"requestType": None}, "missing_parameter"),
        ({"requestType": "RETRIEVE"}, "invalid_parameter"),
        ({"objectUID": None}, "missing_parameter"),
        ({"seriesUID": "1.2.x"}, "invalid_parameter"),
        ({"windowCenter": "40"}, "invalid_parameter"),
        ({"rows": "-3"}, "invalid_parameter"),
        ({"frameNumber": "2"}, "invalid_parameter"),  # a single-frame image has no frame 2
        ({"contentType": "image/jpeg", "transferSyntax": EXPLICIT_LITTLE}, "invalid_parameter"),
        ({"contentType": "application/dicom", "transferSyntax": "not-a-uid"}, "invalid_parameter"),
        ({"anonymize": "yes"}, "anonymize_not_supported"),
    ],
)
def test_a_missing_or_invalid_parameter_is_400_ps3_18_9(platform, ct, parameters, code):
    response = wado(platform, ct, **parameters)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


def test_an_unknown_instance_is_404_ps3_18_9(platform, ct):
    response = wado(platform, ct, objectUID="1.2.3.4.5.6.7")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "parameters",
    [{"contentType": "image/gif"}, {"contentType": "application/dicom", "transferSyntax": "1.2.840.10008.1.2"}],
)
def test_an_unsupported_content_type_or_transfer_syntax_is_406_ps3_18_9_4_2_4(platform, ct, parameters):
    response = wado(platform, ct, **parameters)

    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"


def test_wado_uri_needs_a_token_of_the_tenant_and_is_audited_ps3_18_9(platform, ct):
    from apps.audit.models import AuditEvent

    anonymous = platform.http("clinic_a").get("/dicomweb/wado", params={"requestType": "WADO"})
    other_tenant = wado(platform, ct, tenant="clinic_c")
    wado(platform, ct, contentType="application/dicom")

    assert anonymous.status_code == 401
    assert other_tenant.status_code == 404  # clinic C's archive has no such instance
    with platform.schema("clinic_a"):
        event = AuditEvent.objects.filter(action="dicomweb.retrieve",
                                          object_id=str(ct.datasets[0].SOPInstanceUID)).latest("id")
    assert event.detail["service"] == "wado-uri"
    assert event.actor_name == "referring_physician-user"
