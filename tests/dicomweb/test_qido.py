"""QIDO-RS (PS3.18 §10.6): every matching kind, paging with the PS3.18 warning, computed attributes,
includefield, and the three search levels.

The archive of the test tenant keeps data between runs, so every query here is narrowed by values
made for this module (a fresh surname token, patient IDs and accession numbers).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from apps.audit.models import AuditEvent
from tests.support.dicomweb import (
    DICOM_JSON,
    attribute,
    ct_study,
    dx_study,
    mixed_study,
    qido,
    stow,
    unique_patient_id,
)

TOKEN = "Zq" + uuid.uuid4().hex[:6].upper()


@dataclass
class Archive:
    patient_id: str
    fuzzy_patient_id: str
    studies: list  # the three studies of patient_id: 2021 CT, 2022 CT+MR, 2023 DX


@pytest.fixture(scope="module")
def archive(platform) -> Archive:
    patient_id = unique_patient_id("QIDO")
    common = {"patient_id": patient_id, "patient_name": f"{TOKEN}^Anna", "patient_birth_date": "19800412",
              "patient_sex": "F"}
    first = ct_study(3, study_date="20210315", study_time="101500", accession_number=f"A{TOKEN}1",
                     study_description=f"CT CHEST {TOKEN}", referring_physician_name="Welby^Marcus", **common)
    second = mixed_study(study_date="20220620", study_time="143000", accession_number=f"A{TOKEN}2", **common)
    third = dx_study(study_date="20230101", study_time="080000", accession_number=f"A{TOKEN}3", **common)
    fuzzy_patient_id = unique_patient_id("FUZZY")
    fuzzy = ct_study(1, patient_id=fuzzy_patient_id, patient_name="Smith^John")
    http = platform.http("clinic_a", "technologist")
    for study in (first, second, third, fuzzy):
        assert stow(http, study.files).status_code == 200
    return Archive(patient_id=patient_id, fuzzy_patient_id=fuzzy_patient_id, studies=[first, second, third])


def search(platform, path: str, params=None, role: str = "referring_physician"):
    response = qido(platform.http("clinic_a", role), path, params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(DICOM_JSON)
    return response


def study_uids(response) -> list[str]:
    return [attribute(result, "0020000D") for result in response.json()]


def test_studies_of_a_patient_carry_the_study_attributes_and_computed_counts(platform, archive):
    results = search(platform, "/studies", {"PatientID": archive.patient_id}).json()
    assert len(results) == 3
    by_uid = {attribute(result, "0020000D"): result for result in results}
    second = by_uid[archive.studies[1].study_instance_uid]
    assert attribute(second, "00100020") == archive.patient_id
    assert attribute(second, "00100010") == {"Alphabetic": f"{TOKEN}^Anna"}
    assert attribute(second, "00080020") == "20220620"
    assert attribute(second, "00080030") == "143000"
    assert attribute(second, "00100030") == "19800412"
    assert second["00080061"]["Value"] == ["CT", "MR"]
    assert attribute(second, "00201206") == 2
    assert attribute(second, "00201208") == 4
    assert attribute(second, "00080056") == "ONLINE"
    assert attribute(second, "00081190").endswith(f"/dicomweb/studies/{archive.studies[1].study_instance_uid}")


def test_newest_study_comes_first(platform, archive):
    response = search(platform, "/studies", {"PatientID": archive.patient_id})
    assert study_uids(response) == [study.study_instance_uid for study in reversed(archive.studies)]


def test_a_list_of_study_uids_matches_each(platform, archive):
    wanted = [archive.studies[0].study_instance_uid, archive.studies[2].study_instance_uid]
    response = search(platform, "/studies", {"StudyInstanceUID": ",".join(wanted)})
    assert sorted(study_uids(response)) == sorted(wanted)


@pytest.mark.parametrize("pattern", [f"{TOKEN}*", f"{TOKEN.lower()}^a*", f"*{TOKEN[2:]}^ANNA", f"{TOKEN[:-1]}?^*"])
def test_person_names_match_wildcards_without_regard_to_case(platform, archive, pattern):
    response = search(platform, "/studies", {"PatientName": pattern})
    assert len(response.json()) == 3


def test_a_person_name_matches_a_single_value_without_regard_to_case(platform, archive):
    assert len(search(platform, "/studies", {"PatientName": f"{TOKEN.lower()}^ANNA"}).json()) == 3
    assert search(platform, "/studies", {"PatientName": TOKEN}).json() == []


def test_fuzzy_matching_finds_names_that_sound_alike(platform, archive):
    params = {"PatientID": archive.fuzzy_patient_id, "PatientName": "jon smyth"}
    assert search(platform, "/studies", params).json() == []
    assert len(search(platform, "/studies", {**params, "fuzzymatching": "true"}).json()) == 1


@pytest.mark.parametrize(
    ("date_range", "expected"),
    [("20220101-20231231", [1, 2]), ("-20211231", [0]), ("20220621-", [2]), ("20220620", [1])],
)
def test_study_dates_match_ranges(platform, archive, date_range, expected):
    response = search(platform, "/studies", {"PatientID": archive.patient_id, "StudyDate": date_range})
    assert sorted(study_uids(response)) == sorted(archive.studies[index].study_instance_uid for index in expected)


def test_study_times_match_ranges(platform, archive):
    response = search(platform, "/studies", {"PatientID": archive.patient_id, "StudyTime": "0900-1500"})
    assert sorted(study_uids(response)) == sorted(s.study_instance_uid for s in archive.studies[:2])


def test_modalities_in_study_match_any_series(platform, archive):
    response = search(platform, "/studies", {"PatientID": archive.patient_id, "ModalitiesInStudy": "MR"})
    assert study_uids(response) == [archive.studies[1].study_instance_uid]
    both = search(platform, "/studies", {"PatientID": archive.patient_id, "ModalitiesInStudy": "MR,DX"})
    assert len(both.json()) == 2


def test_accession_number_and_description_match(platform, archive):
    assert study_uids(search(platform, "/studies", {"AccessionNumber": f"A{TOKEN}3"})) == [
        archive.studies[2].study_instance_uid
    ]
    assert study_uids(search(platform, "/studies", {"StudyDescription": f"CT CHEST {TOKEN}"})) == [
        archive.studies[0].study_instance_uid
    ]


def test_a_limit_cuts_the_results_with_the_ps3_18_warning_and_offset_pages_on(platform, archive):
    first_page = search(platform, "/studies", {"PatientID": archive.patient_id, "limit": "2"})
    assert len(first_page.json()) == 2
    assert "The number of results exceeded the maximum supported by the server. Additional results can be requested." in (
        first_page.headers["Warning"]
    )
    assert first_page.headers["Warning"].startswith("299 ")
    second_page = search(platform, "/studies", {"PatientID": archive.patient_id, "limit": "2", "offset": "2"})
    assert len(second_page.json()) == 1
    assert "Warning" not in second_page.headers
    assert set(study_uids(first_page)) | set(study_uids(second_page)) == {s.study_instance_uid for s in archive.studies}


def test_no_match_is_an_empty_array(platform, archive):
    response = search(platform, "/studies", {"PatientID": "NO-SUCH-PATIENT-" + TOKEN})
    assert response.json() == []


def test_series_of_a_study_carry_their_attributes_in_series_number_order(platform, archive):
    study = archive.studies[1]
    results = search(platform, f"/studies/{study.study_instance_uid}/series").json()
    assert [attribute(result, "00080060") for result in results] == ["CT", "MR"]
    assert [attribute(result, "00200011") for result in results] == [1, 2]
    assert [attribute(result, "00201209") for result in results] == [3, 1]
    assert all(attribute(result, "0020000D") == study.study_instance_uid for result in results)
    assert attribute(results[0], "00081190").endswith(
        f"/studies/{study.study_instance_uid}/series/{attribute(results[0], '0020000E')}"
    )
    only_mr = search(platform, f"/studies/{study.study_instance_uid}/series", {"Modality": "MR"}).json()
    assert len(only_mr) == 1


def test_series_of_all_studies_carry_the_study_attributes(platform, archive):
    results = search(platform, "/series", {"PatientID": archive.patient_id, "Modality": "CT"}).json()
    assert len(results) == 2
    assert all(attribute(result, "00100020") == archive.patient_id for result in results)


def test_instances_of_a_series_come_in_instance_number_order(platform, archive):
    study = archive.studies[0]
    path = f"/studies/{study.study_instance_uid}/series/{study.series_instance_uids[0]}/instances"
    results = search(platform, path).json()
    assert [attribute(result, "00080018") for result in results] == study.sop_instance_uids
    assert [attribute(result, "00200013") for result in results] == [1, 2, 3]
    assert attribute(results[0], "00280010") == 64
    assert attribute(results[0], "00080016") == "1.2.840.10008.5.1.4.1.1.2"
    assert attribute(results[0], "00083002") == "1.2.840.10008.1.2.1"


def test_instances_of_a_study_and_of_all_studies(platform, archive):
    study = archive.studies[1]
    assert len(search(platform, f"/studies/{study.study_instance_uid}/instances").json()) == 4
    sop = study.sop_instance_uids[3]
    results = search(platform, "/instances", {"SOPInstanceUID": sop}).json()
    assert [attribute(result, "0020000D") for result in results] == [study.study_instance_uid]
    assert attribute(results[0], "00100020") == archive.patient_id


def test_includefield_adds_attributes_from_the_stored_metadata(platform, archive):
    study = archive.studies[0]
    path = f"/studies/{study.study_instance_uid}/instances"
    result = search(platform, path, {"includefield": "SliceThickness,00280030", "limit": "1"}).json()[0]
    assert attribute(result, "00180050") == 5
    assert result["00280030"]["vr"] == "DS"
    everything = search(platform, path, {"includefield": "all", "limit": "1"}).json()[0]
    assert "00200032" in everything  # Image Position (Patient), not an index column
    assert everything["7FE00010"]["BulkDataURI"].startswith("http")


def test_a_malformed_query_is_a_bad_request(platform, archive):
    for params in ({"StudyDate": "2021-03-15"}, {"NotAnAttribute": "x"}, {"limit": "many"}):
        response = qido(platform.http("clinic_a", "technologist"), "/studies", params)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_query"


def test_keys_the_index_cannot_match_are_named_in_a_warning(platform, archive):
    response = search(platform, "/studies", {"PatientID": archive.patient_id, "InstitutionName": "x"})
    assert len(response.json()) == 3
    assert "InstitutionName" in response.headers["Warning"]


def test_a_client_that_does_not_accept_json_gets_406(platform, archive):
    response = qido(platform.http("clinic_a", "technologist"), "/studies", headers={"Accept": "application/dicom+xml"})
    assert response.status_code == 406


def test_every_search_is_one_audit_event_naming_who_and_what(platform, archive):
    search(platform, "/studies", {"PatientID": archive.patient_id, "limit": "1"})
    with platform.schema("clinic_a"):
        event = AuditEvent.objects.filter(action="dicomweb.search").order_by("-id").first()
    assert event.actor_name == "referring_physician-user"
    assert archive.patient_id in event.detail["query"]
    assert event.client_ip == "127.0.0.1"
