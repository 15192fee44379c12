"""The consult-scoped DICOMweb root (`/consults/{consult_id}/dicomweb` on the hospital's domain).

Two clinics each hold a study with the same Study, Series and SOP Instance UIDs but a different
patient (and different pixels), and both send it to the same hospital. Each consult's root answers
with its own clinic's patient at every level, refuses anything else, ends with the grant, keeps
answering the clinic's study after the hospital stores its own copy under the same UIDs, and is
audited on both sides. The hospital's own `/dicomweb` never resolves a grant by UID.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from urllib.parse import urlsplit

import pydicom
import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from apps.audit.models import AuditEvent
from apps.consult_routing.models import ConsultRoute
from tests.consults.support import act, consult_request
from tests.factories.dicom_factory import make_ct_series, to_part10_bytes
from tests.support.dicomweb import DICOM_JSON, Study, attribute, parse_multipart, stow, unique_patient_id
from tests.support.tenancy import add_user_with_token, discard_tenant, provision_throwaway

PATIENT_ID = "00100020"
RETRIEVE_URL = "00081190"
SINGLE_DICOM = "application/dicom"
FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def twin_study(*, study_instance_uid: str, series_instance_uid: str, sop_instance_uids: list[str], seed: int) -> Study:
    """A two-slice CT under exactly these UIDs, of a patient of its own, with pixels of its own."""
    patient_id = unique_patient_id("TWIN")
    datasets = make_ct_series(2, rows=32, columns=32, seed=seed, patient_id=patient_id,
                              study_instance_uid=study_instance_uid, series_instance_uid=series_instance_uid,
                              sop_instance_uids=sop_instance_uids)
    return Study(study_instance_uid, patient_id, [to_part10_bytes(dataset) for dataset in datasets], datasets)


@dataclass(frozen=True)
class Twins:
    """The same UIDs in clinic_a (consult `a`), in a second clinic (consult `d`, sent later)."""

    study: str
    series: str
    sop: str
    in_clinic_a: Study
    in_clinic_d: Study
    consult_a: str
    consult_d: str

    def root(self, consult_id: str) -> str:
        return f"/consults/{consult_id}/dicomweb"

    def instance_path(self, consult_id: str) -> str:
        return f"{self.root(consult_id)}/studies/{self.study}/series/{self.series}/instances/{self.sop}"


def _accepted_consult(platform, study: Study, tenant: str) -> str:
    created = consult_request(platform, study, tenant=tenant)
    assert created.status_code == 201, created.text
    consult_id = created.json()["id"]
    assert act(platform, "hospital_b", "consult_coordinator", consult_id, "accept").status_code == 200
    return consult_id


@pytest.fixture(scope="module")
def clinic_d(platform):
    """A second clinic in hospital_b's referral network."""
    from tenants.services import referral_link_create

    result = provision_throwaway(platform, kind="clinic", key="clinic_d")
    for role in ("technologist", "referring_physician"):
        add_user_with_token(platform, "clinic_d", role=role)
    with platform.schema():
        referral_link_create(clinic_slug=result.tenant.slug, hospital_slug="test-hospital-b")
    yield result
    discard_tenant(platform, result.tenant.slug)


@pytest.fixture(scope="module")
def twins(platform, clinic_d) -> Twins:
    study_uid, series_uid = generate_uid(), generate_uid()
    sops = [generate_uid(), generate_uid()]
    in_a = twin_study(study_instance_uid=study_uid, series_instance_uid=series_uid, sop_instance_uids=sops, seed=0)
    in_d = twin_study(study_instance_uid=study_uid, series_instance_uid=series_uid, sop_instance_uids=sops, seed=500)
    assert in_a.datasets[0].PixelData != in_d.datasets[0].PixelData
    for tenant, study in (("clinic_a", in_a), ("clinic_d", in_d)):
        stored = stow(platform.http(tenant, "technologist"), study.files)
        assert stored.status_code == 200, stored.text
    consult_a = _accepted_consult(platform, in_a, "clinic_a")
    consult_d = _accepted_consult(platform, in_d, "clinic_d")  # the newer consult: "newest wins" would pick it
    return Twins(study_uid, series_uid, sops[0], in_a, in_d, consult_a, consult_d)


def _radiologist(platform):
    return platform.http("hospital_b", "radiologist")


def _own_study(twins: Twins, consult_id: str) -> Study:
    return twins.in_clinic_a if consult_id == twins.consult_a else twins.in_clinic_d


def _consults(twins: Twins) -> list[str]:
    return [twins.consult_a, twins.consult_d]


@pytest.mark.parametrize("which", ["a", "d"])
@pytest.mark.parametrize("search", ["/studies", "/series", "/instances", "/studies/{study}/series",
                                    "/studies/{study}/instances", "/studies/{study}/series/{series}/instances"])
def test_every_qido_level_of_a_consult_root_finds_only_its_clinics_patient(platform, twins, which, search):
    consult_id = twins.consult_a if which == "a" else twins.consult_d
    path = twins.root(consult_id) + search.format(study=twins.study, series=twins.series)
    response = _radiologist(platform).get(path, params={"StudyInstanceUID": twins.study, "includefield": "PatientID"},
                                          headers={"Accept": DICOM_JSON})
    assert response.status_code == 200, response.text
    results = response.json()
    assert results, "the consult's study must be found"
    assert {attribute(result, PATIENT_ID) for result in results} == {_own_study(twins, consult_id).patient_id}
    assert all(urlsplit(attribute(result, RETRIEVE_URL)).path.startswith(twins.root(consult_id) + "/")
               for result in results if RETRIEVE_URL in result)


def test_a_study_search_of_a_consult_root_without_a_filter_lists_only_the_consults_study(platform, twins):
    response = _radiologist(platform).get(f"{twins.root(twins.consult_a)}/studies", headers={"Accept": DICOM_JSON})
    assert response.status_code == 200
    assert [attribute(result, "0020000D") for result in response.json()] == [twins.study]


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_metadata_of_a_consult_root_is_its_clinics_patient(platform, twins, level):
    for consult_id in _consults(twins):
        path = {"study": f"{twins.root(consult_id)}/studies/{twins.study}",
                "series": f"{twins.root(consult_id)}/studies/{twins.study}/series/{twins.series}",
                "instance": twins.instance_path(consult_id)}[level]
        response = _radiologist(platform).get(path + "/metadata", headers={"Accept": DICOM_JSON})
        assert response.status_code == 200, response.text
        assert {attribute(item, PATIENT_ID) for item in response.json()} == {_own_study(twins, consult_id).patient_id}
        bulk_data_uris = [value["BulkDataURI"] for item in response.json() for value in item.values()
                          if "BulkDataURI" in value]
        assert bulk_data_uris
        assert all(urlsplit(uri).path.startswith(twins.root(consult_id) + "/") for uri in bulk_data_uris)


def test_an_instance_of_a_consult_root_is_its_clinics_original(platform, twins):
    for consult_id in _consults(twins):
        response = _radiologist(platform).get(twins.instance_path(consult_id),
                                              headers={"Accept": f"{SINGLE_DICOM}; transfer-syntax=*"})
        assert response.status_code == 200, response.text
        assert response.content == _own_study(twins, consult_id).files[0]


def test_frames_of_a_consult_root_are_its_clinics_pixels(platform, twins):
    for consult_id in _consults(twins):
        response = _radiologist(platform).get(twins.instance_path(consult_id) + "/frames/1", headers={"Accept": FRAMES})
        assert response.status_code == 200, response.text
        [(_, content)] = parse_multipart(response)
        assert content == _own_study(twins, consult_id).datasets[0].PixelData


@pytest.mark.parametrize("resource", ["/rendered", "/thumbnail", "/frames/1/rendered"])
def test_rendered_images_of_a_consult_root_are_its_clinics_images(platform, twins, resource):
    own = {"clinic_a": twins.consult_a, "clinic_d": twins.consult_d}
    images = {}
    for clinic, consult_id in own.items():
        through_consult = _radiologist(platform).get(twins.instance_path(consult_id) + resource,
                                                     headers={"Accept": "image/png"})
        assert through_consult.status_code == 200, through_consult.text
        in_clinic = platform.http(clinic, "technologist").get(
            f"/dicomweb/studies/{twins.study}/series/{twins.series}/instances/{twins.sop}{resource}",
            headers={"Accept": "image/png"})
        assert through_consult.content == in_clinic.content
        images[clinic] = through_consult.content
    assert images["clinic_a"] != images["clinic_d"]


def test_a_study_thumbnail_of_a_consult_root_is_its_clinics_image(platform, twins):
    for clinic, consult_id in (("clinic_a", twins.consult_a), ("clinic_d", twins.consult_d)):
        through_consult = _radiologist(platform).get(f"{twins.root(consult_id)}/studies/{twins.study}/thumbnail",
                                                     headers={"Accept": "image/png"})
        in_clinic = platform.http(clinic, "technologist").get(f"/dicomweb/studies/{twins.study}/thumbnail",
                                                              headers={"Accept": "image/png"})
        assert through_consult.status_code == 200
        assert through_consult.content == in_clinic.content


def test_every_answer_through_a_grant_is_kept_out_of_caches(platform, twins):
    for resource in ("/thumbnail", "/rendered", "/metadata", "/frames/1", ""):
        accept = {"/frames/1": FRAMES, "/metadata": DICOM_JSON, "": f"{SINGLE_DICOM}; transfer-syntax=*"}.get(
            resource, "image/jpeg")
        response = _radiologist(platform).get(twins.instance_path(twins.consult_a) + resource,
                                              headers={"Accept": accept})
        assert response.status_code == 200, (resource, response.text)
        assert response.headers["Cache-Control"] == "private, no-store", resource


def test_a_consult_root_refuses_a_study_outside_the_consult(platform, twins):
    from tests.consults.support import clinic_study

    other = clinic_study(platform, slices=1)  # in clinic_a's archive, but not in consult a
    response = _radiologist(platform).get(f"{twins.root(twins.consult_a)}/studies/{other.study_instance_uid}/metadata",
                                          headers={"Accept": DICOM_JSON})
    assert response.status_code == 404
    assert response.json()["code"] == "study_not_found"
    search = _radiologist(platform).get(f"{twins.root(twins.consult_a)}/studies",
                                        params={"StudyInstanceUID": other.study_instance_uid},
                                        headers={"Accept": DICOM_JSON})
    assert search.status_code == 200
    assert search.json() == []


def test_wado_uri_of_a_consult_root_reads_only_the_consults_study_ps3_18_9(platform, twins):
    from tests.consults.support import clinic_study

    def wado(consult_id: str, study: str, series: str, sop: str):
        return _radiologist(platform).get(f"{twins.root(consult_id)}/wado", params={
            "requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop,
            "contentType": "application/dicom"})

    for consult_id in _consults(twins):
        response = wado(consult_id, twins.study, twins.series, twins.sop)
        assert response.status_code == 200, response.text
        assert response.content == _own_study(twins, consult_id).files[0]
        assert response.headers["Cache-Control"] == "private, no-store"
    other = clinic_study(platform, slices=1)  # in clinic_a's archive, but not in consult a
    dataset = other.datasets[0]
    outside = wado(twins.consult_a, other.study_instance_uid, str(dataset.SeriesInstanceUID),
                   str(dataset.SOPInstanceUID))
    assert outside.status_code == 404
    assert outside.json()["code"] == "study_not_found"


def test_a_consult_root_is_read_only(platform, twins):
    response = _radiologist(platform).post(f"{twins.root(twins.consult_a)}/studies", data=b"",
                                           headers={"Content-Type": 'multipart/related; type="application/dicom"'})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    deleted = platform.http("hospital_b", "hospital_admin").delete(f"{twins.root(twins.consult_a)}/studies/{twins.study}")
    assert deleted.status_code == 405
    assert _radiologist(platform).get(f"{twins.root(twins.consult_a)}/studies/{twins.study}/metadata").status_code == 200


def test_the_hospitals_own_dicomweb_resolves_no_grant_by_uid(platform, twins):
    response = _radiologist(platform).get(f"/dicomweb/studies/{twins.study}/metadata", headers={"Accept": DICOM_JSON})
    assert response.status_code == 404
    search = _radiologist(platform).get("/dicomweb/studies", params={"StudyInstanceUID": twins.study},
                                        headers={"Accept": DICOM_JSON})
    assert search.status_code == 200
    assert search.json() == []


def test_the_signed_in_staff_session_reads_through_the_consult_root(platform, twins):
    from tests.support.tenancy import session_login

    client, answer = session_login(platform, platform.host("hospital_b"), username="radiologist-user",
                                   password="correct-horse-battery")
    assert answer.status_code == 302
    response = client.get(f"{twins.root(twins.consult_a)}/studies", params={"StudyInstanceUID": twins.study},
                          headers={"Accept": DICOM_JSON})
    assert response.status_code == 200, response.text
    assert [attribute(result, PATIENT_ID) for result in response.json()] == [twins.in_clinic_a.patient_id]
    assert client.post(f"{twins.root(twins.consult_a)}/studies").status_code == 401


def test_a_hospital_stow_under_the_same_uids_hides_nothing_in_the_consult_root(platform, twins):
    copy = twin_study(study_instance_uid=twins.study, series_instance_uid=twins.series,
                      sop_instance_uids=[twins.sop, generate_uid()], seed=900)
    stored = stow(platform.http("hospital_b", "radiologist"), copy.files)
    assert stored.status_code == 200, stored.text
    through_consult = _radiologist(platform).get(f"{twins.root(twins.consult_a)}/studies/{twins.study}/metadata",
                                                 headers={"Accept": DICOM_JSON})
    assert {attribute(item, PATIENT_ID) for item in through_consult.json()} == {twins.in_clinic_a.patient_id}
    instance = _radiologist(platform).get(twins.instance_path(twins.consult_a),
                                          headers={"Accept": f"{SINGLE_DICOM}; transfer-syntax=*"})
    assert pydicom.dcmread(io.BytesIO(instance.content)).PatientID == twins.in_clinic_a.patient_id
    own = _radiologist(platform).get(f"/dicomweb/studies/{twins.study}/metadata", headers={"Accept": DICOM_JSON})
    assert {attribute(item, PATIENT_ID) for item in own.json()} == {copy.patient_id}


def test_a_read_through_the_consult_root_is_audited_on_both_sides(platform, twins):
    path = f"{twins.root(twins.consult_a)}/studies/{twins.study}/series/{twins.series}/metadata"
    assert _radiologist(platform).get(path, headers={"Accept": DICOM_JSON}).status_code == 200
    for tenant in ("hospital_b", "clinic_a"):
        with platform.schema(tenant):
            row = AuditEvent.objects.filter(action="consult.grant_read", object_id=twins.consult_a).latest("pk")
        assert row.actor_name == "radiologist-user"
        assert row.detail["path"] == path
        assert row.detail["study"] == twins.study
        assert row.detail["clinic"] == "test-clinic-a"
    with platform.schema("clinic_a"):
        archive_read = AuditEvent.objects.filter(action="dicomweb.metadata", object_id=twins.series).latest("pk")
        assert archive_read.actor_name == "radiologist-user"
    with platform.schema("clinic_d"):
        assert not AuditEvent.objects.filter(action="consult.grant_read", object_id=twins.consult_a).exists()


def test_a_consult_of_another_hospital_or_none_is_not_found(platform, twins):
    unknown = "00000000-0000-4000-8000-000000000000"
    for consult_id in (unknown, twins.consult_a):
        response = platform.http("clinic_a", "clinic_admin").get(f"{twins.root(consult_id)}/studies")
        assert response.status_code == 404
        assert response.json()["code"] == "consult_not_found"
    response = _radiologist(platform).get(f"{twins.root(unknown)}/studies")
    assert response.status_code == 404
    assert response.json()["code"] == "consult_not_found"


def test_a_consult_not_yet_accepted_grants_nothing(platform):
    from tests.consults.support import clinic_study

    study = clinic_study(platform, slices=1)
    consult_id = consult_request(platform, study).json()["id"]
    response = _radiologist(platform).get(f"/consults/{consult_id}/dicomweb/studies/{study.study_instance_uid}/metadata")
    assert response.status_code == 404
    assert response.json()["code"] == "consult_not_found"


def test_the_grant_of_a_consult_root_ends_after_the_grace_of_a_closed_consult(platform, twins):
    from tests.consults.support import clinic_study

    study = clinic_study(platform, slices=1)
    consult_id = _accepted_consult(platform, study, "clinic_a")
    path = f"/consults/{consult_id}/dicomweb/studies/{study.study_instance_uid}/metadata"
    assert _radiologist(platform).get(path).status_code == 200
    assert act(platform, "clinic_a", "referring_physician", consult_id, "cancel", {"reason": "done"}).status_code == 200
    assert _radiologist(platform).get(path).status_code == 200  # closed, within the grace period
    with platform.schema():
        ConsultRoute.objects.filter(pk=consult_id).update(grant_expires_at=timezone.now())
    response = _radiologist(platform).get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "consult_not_found"


def test_a_study_scoped_token_never_reaches_a_consult_root(platform, twins):
    from apps.accounts.models import User
    from apps.accounts.services import token_issue

    with platform.schema("hospital_b"):
        user = User.objects.get(username="radiologist-user")
        secret = token_issue(user=user, name="engine", study_instance_uid_scope=twins.study).secret
    scoped = platform.http("hospital_b", token=secret)
    response = scoped.get(f"{twins.root(twins.consult_a)}/studies/{twins.study}/metadata", headers={"Accept": DICOM_JSON})
    assert response.status_code == 403
    assert response.json()["code"] == "token_out_of_scope"


def test_a_study_retrieve_of_a_consult_root_holds_only_its_clinics_instances(platform, twins):
    for consult_id in _consults(twins):
        response = _radiologist(platform).get(f"{twins.root(consult_id)}/studies/{twins.study}",
                                              headers={"Accept": 'multipart/related; type="application/dicom"; '
                                                                 'transfer-syntax=*'})
        assert response.status_code == 200, response.text
        assert [content for _, content in parse_multipart(response)] == _own_study(twins, consult_id).files


def test_a_rendered_study_of_a_consult_root_is_its_clinics_images(platform, twins):
    for clinic, consult_id in (("clinic_a", twins.consult_a), ("clinic_d", twins.consult_d)):
        through_consult = _radiologist(platform).get(f"{twins.root(consult_id)}/studies/{twins.study}/rendered",
                                                     headers={"Accept": "image/png"})
        in_clinic = platform.http(clinic, "technologist").get(f"/dicomweb/studies/{twins.study}/rendered",
                                                              headers={"Accept": "image/png"})
        assert through_consult.status_code == 200, through_consult.text
        assert [content for _, content in parse_multipart(through_consult)] == [
            content for _, content in parse_multipart(in_clinic)]


def test_the_hospitals_consult_names_its_dicomweb_root_and_the_clinics_does_not(platform, twins):
    from tests.consults.support import consult_state

    hospital_view = consult_state(platform, twins.consult_a, "hospital_b", "radiologist")
    assert hospital_view["dicomweb_root"] == f"/consults/{twins.consult_a}/dicomweb"
    assert "dicomweb_root" not in consult_state(platform, twins.consult_a)


def test_the_bulk_data_uris_of_a_consult_root_serve_its_clinics_pixels(platform, twins):
    for consult_id in _consults(twins):
        metadata = _radiologist(platform).get(f"{twins.instance_path(consult_id)}/metadata",
                                              headers={"Accept": DICOM_JSON}).json()
        pixel_data_uri = metadata[0]["7FE00010"]["BulkDataURI"]
        response = _radiologist(platform).get(urlsplit(pixel_data_uri).path,
                                              headers={"Accept": 'multipart/related; type="application/octet-stream"'})
        assert response.status_code == 200, response.text
        [(_, content)] = parse_multipart(response)
        assert content == _own_study(twins, consult_id).datasets[0].PixelData
