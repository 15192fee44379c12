"""Conformance rules of PS3.18 a conformance suite found broken, one test (or a few) per rule, each
named for the rule and citing the section it follows."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.factories.dicom_factory import make_multiframe, to_part10_bytes
from tests.support.dicomweb import (
    ct_study,
    failures,
    instance_path,
    parse_multipart,
    qido,
    referenced_uids,
    stow,
    unique_patient_id,
)

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


# --- PS3.18 §8.3.3.1: the `accept` query parameter overrides the Accept header ------------------------------


@pytest.fixture(scope="module")
def stored_ct(platform):
    study = ct_study(2)
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    return study




@pytest.mark.parametrize("suffix", ["/thumbnail", "/rendered", "/frames/1/rendered", "/frames/1/thumbnail"])
def test_the_accept_query_parameter_of_an_instance_image_overrides_the_header_ps3_18_8_3_3_1(platform, stored_ct,
                                                                                           suffix):
    http = platform.http("clinic_a", "referring_physician")

    jpeg = http.get(instance_path(stored_ct) + suffix, params={"accept": "image/jpeg"},
                    headers={"Accept": "application/json"})
    png = http.get(instance_path(stored_ct) + suffix, params={"accept": "image/png"},
                   headers={"Accept": "image/jpeg"})

    assert (jpeg.status_code, jpeg.headers["Content-Type"]) == (200, "image/jpeg")
    assert jpeg.content.startswith(b"\xff\xd8")
    assert (png.status_code, png.headers["Content-Type"]) == (200, "image/png")


def test_the_accept_query_parameter_of_study_and_series_thumbnails_overrides_the_header_ps3_18_8_3_3_1(
    platform, stored_ct
):
    http = platform.http("clinic_a", "referring_physician")
    study_path = f"/dicomweb/studies/{stored_ct.study_instance_uid}"
    for path in (study_path, f"{study_path}/series/{stored_ct.series_instance_uids[0]}"):
        response = http.get(f"{path}/thumbnail", params={"accept": "image/jpeg"},
                            headers={"Accept": "multipart/related; type=\"application/octet-stream\""})
        assert (response.status_code, response.headers["Content-Type"]) == (200, "image/jpeg")


def test_the_accept_query_parameter_of_metadata_overrides_the_header_ps3_18_8_3_3_1(platform, stored_ct):
    response = platform.http("clinic_a", "referring_physician").get(
        f"/dicomweb/studies/{stored_ct.study_instance_uid}/metadata?accept=application/dicom%2Bjson",
        headers={"Accept": "image/jpeg"},
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/dicom+json"


def test_an_accept_query_parameter_plus_decoded_as_a_space_still_names_the_type_ps3_18_8_3_3_1():
    from apps.dicomweb.negotiation import effective_accept

    assert effective_accept("image/jpeg", ["application/dicom json"]) == "application/dicom+json"
    assert effective_accept("image/png", []) == "image/png"
    assert effective_accept(None, ['multipart/related; type="image/png"']) == 'multipart/related; type="image/png"'


# --- PS3.18 §10.5 / PS3.3 §C.7.1.1: STOW-RS stores an instance whose Patient ID (Type 2) is empty ---------


def test_stow_stores_an_instance_with_an_empty_patient_id_ps3_18_10_5(platform):
    study = ct_study(2, patient_id="")
    http = platform.http("clinic_a", "technologist")

    response = stow(http, study.files)

    assert response.status_code == 200, response.text
    assert sorted(referenced_uids(response)) == sorted(study.sop_instance_uids)
    [found] = qido(http, "/studies", {"StudyInstanceUID": study.study_instance_uid}).json()
    assert found.get("00100020", {}).get("Value") in (None, [""])


def test_stow_still_refuses_an_empty_patient_id_contradicting_the_study_ps3_18_10_5(platform):
    study = ct_study(2)
    http = platform.http("clinic_a", "technologist")
    assert stow(http, study.files[:1]).status_code == 200
    study.datasets[1].PatientID = ""

    response = stow(http, [to_part10_bytes(study.datasets[1])])

    assert response.status_code == 409, response.text
    assert failures(response) == [(study.sop_instance_uids[1], 0xC410)]


# --- PS3.18 §10.6.1.2 / PS3.4 §C.2.2.2.5: DT range matching of AcquisitionDateTime at instance level --------


@pytest.fixture(scope="module")
def acquired_study(platform):
    study = ct_study(3)
    for dataset, acquired in zip(study.datasets, ["20240301083000", "20240301120000.5", "20240302"], strict=True):
        dataset.AcquisitionDateTime = acquired
    study.files = [to_part10_bytes(dataset) for dataset in study.datasets]
    assert stow(platform.http("clinic_a", "technologist"), study.files).status_code == 200
    return study


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240301083000", [0]),
        ("20240301", [0, 1]),
        ("20240301090000-20240302", [1, 2]),
        ("-20240301100000", [0]),
        ("20240301120000.5-", [1, 2]),
        ("2024", [0, 1, 2]),
        ("2023-20240229", []),
    ],
)
def test_acquisition_datetime_matches_dt_ranges_ps3_4_c_2_2_2_5(platform, acquired_study, value, expected):
    response = qido(platform.http("clinic_a", "referring_physician"),
                    f"/studies/{acquired_study.study_instance_uid}/instances", {"AcquisitionDateTime": value})

    assert response.status_code == 200
    assert "Warning" not in response.headers
    found = {result["00080018"]["Value"][0] for result in response.json()}
    assert found == {acquired_study.sop_instance_uids[index] for index in expected}
    assert all(result["0008002A"]["vr"] == "DT" for result in response.json())



# --- PS3.18 §8.6.1.2: each part of a frames or bulk data answer names its resource in Content-Location ------


def test_each_frame_part_carries_its_content_location_ps3_18_8_6_1_2(platform):
    dataset = make_multiframe(number_of_frames=3, rows=16, columns=16)
    assert stow(platform.http("clinic_a", "technologist"), [to_part10_bytes(dataset)]).status_code == 200
    instance = (f"/dicomweb/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}"
                f"/instances/{dataset.SOPInstanceUID}")

    response = platform.http("clinic_a", "referring_physician").get(
        f"{instance}/frames/3,1", headers={"Accept": 'multipart/related; type="application/octet-stream"'})

    assert response.status_code == 200
    locations = [headers.get("content-location") for headers, _ in parse_multipart(response)]
    root = f"http://{platform.host('clinic_a')}"
    assert locations == [f"{root}{instance}/frames/3", f"{root}{instance}/frames/1"]


def test_each_bulk_data_part_carries_its_content_location_ps3_18_8_6_1_2(platform, stored_ct):
    instance = instance_path(stored_ct)
    http = platform.http("clinic_a", "referring_physician")

    response = http.get(f"{instance}/bulkdata/7FE00010",
                        headers={"Accept": 'multipart/related; type="application/octet-stream"'})

    assert response.status_code == 200
    [(headers, _content)] = parse_multipart(response)
    assert headers["content-location"] == f"http://{platform.host('clinic_a')}{instance}/bulkdata/7FE00010"


# --- PS3.18 §8.7.3.3.2 / PS3.19 §A.1: metadata as application/dicom+xml (Native DICOM Model) -------------


def test_metadata_is_sent_as_native_dicom_model_xml_ps3_18_8_7_3_3_2(platform, stored_ct):
    from xml.etree import ElementTree

    response = platform.http("clinic_a", "referring_physician").get(
        f"/dicomweb/studies/{stored_ct.study_instance_uid}/metadata",
        headers={"Accept": 'multipart/related; type="application/dicom+xml"'})

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("multipart/related")
    parts = parse_multipart(response)
    assert [headers["content-type"] for headers, _ in parts] == ["application/dicom+xml"] * 2
    namespace = {"n": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
    found = set()
    for _headers, content in parts:
        root = ElementTree.fromstring(content)
        assert root.tag == "{http://dicom.nema.org/PS3.19/models/NativeDICOM}NativeDicomModel"
        found.add(root.find("n:DicomAttribute[@keyword='SOPInstanceUID']/n:Value", namespace).text)
        rows = root.find("n:DicomAttribute[@tag='00280010']", namespace)
        assert (rows.get("vr"), rows.find("n:Value", namespace).text) == ("US", "64")
        assert root.find("n:DicomAttribute[@tag='7FE00010']/n:BulkData", namespace).get("uri").endswith("/7FE00010")
        family = root.find("n:DicomAttribute[@keyword='PatientName']/n:PersonName/n:Alphabetic/n:FamilyName", namespace)
        assert family is not None and family.text
    assert found == set(stored_ct.sop_instance_uids)


# --- PS3.18 Table 8.7.3-2: an instance retrieved as application/octet-stream is its bulk data ----------------


@pytest.mark.parametrize("accept", ['multipart/related; type="application/octet-stream"', "application/octet-stream"])
def test_an_instance_is_retrieved_as_octet_stream_bulk_data_ps3_18_table_8_7_3_2(platform, stored_ct, accept):
    instance = instance_path(stored_ct)

    response = platform.http("clinic_a", "referring_physician").get(instance, headers={"Accept": accept})

    assert response.status_code == 200, response.text
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"].startswith("application/octet-stream")
    assert headers["content-location"].endswith(f"{instance}/bulkdata/7FE00010")
    assert content == stored_ct.datasets[0].PixelData
