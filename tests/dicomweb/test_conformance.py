"""Conformance rules of PS3.18 a conformance suite found broken, one test (or a few) per rule, each
named for the rule and citing the section it follows."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.support.dicomweb import ct_study, qido, stow, unique_patient_id

# --- PS3.18 §8.1.3 / RFC 9110 §15.5.6: a method the resource lacks is 405 with Allow, for every role ---------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/studies", "GET, HEAD, POST, OPTIONS"),
        ("DELETE", "/studies", "GET, HEAD, POST, OPTIONS"),
        ("POST", "/studies/1.2.3/series/1.2.3.4", "GET, HEAD, DELETE, OPTIONS"),
        ("DELETE", "/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5", "GET, HEAD, OPTIONS"),
        ("PATCH", "/studies/1.2.3", "GET, HEAD, POST, DELETE, OPTIONS"),
        ("POST", "/studies/1.2.3/metadata", "GET, HEAD, OPTIONS"),
    ],
)
@pytest.mark.parametrize("role", ["clinic_admin", "referring_physician"])
def test_an_unsupported_method_is_405_with_allow_for_every_role_ps3_18_8_1_3(platform, method, path, allow, role):
    response = platform.http("clinic_a", role).request(method, f"/dicomweb{path}")

    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allow
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "method_not_allowed"


def test_a_supported_method_the_role_lacks_is_still_403_ps3_18_8_1_3(platform):
    study = ct_study(1)
    stow(platform.http("clinic_a", "technologist"), study.files)

    response = platform.http("clinic_a", "referring_physician").delete(f"/dicomweb/studies/{study.study_instance_uid}")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


# --- PS3.18 Table 10.6.3-5: instance-level QIDO-RS returns Bits Allocated ------------------------------------


def test_instance_qido_returns_bits_allocated_ps3_18_table_10_6_3_5(platform):
    study = ct_study(2)
    stow(platform.http("clinic_a", "technologist"), study.files)

    results = qido(platform.http("clinic_a", "referring_physician"), f"/studies/{study.study_instance_uid}/instances")

    assert results.status_code == 200
    assert [result.get("00280100") for result in results.json()] == [{"vr": "US", "Value": [16]}] * 2


def test_bulk_loaded_instances_carry_bits_allocated_in_qido_ps3_18_table_10_6_3_5(platform):
    from apps.archive.services import index_bulk_load

    study_uid, series_uid, sop_uid = generate_uid(), generate_uid(), generate_uid()
    attributes = {
        "PatientID": unique_patient_id("BULK"), "StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
        "SOPInstanceUID": sop_uid, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "Modality": "CT",
        "Rows": 512, "Columns": 512, "BitsAllocated": 16,
    }
    with platform.schema("clinic_c"):
        index_bulk_load(datasets=[attributes])

    [result] = qido(platform.http("clinic_c", "technologist"), "/instances", {"SOPInstanceUID": sop_uid}).json()

    assert result["00280100"] == {"vr": "US", "Value": [16]}
