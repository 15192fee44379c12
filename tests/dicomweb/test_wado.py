"""WADO-RS (PS3.18 §10.4): originals byte for byte, Explicit VR Little Endian on request, metadata
whose BulkDataURIs resolve, frames, byte ranges, zip, and dicomweb-client round trips."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from tests.factories.dicom_factory import compressed_copy, make_multiframe, to_part10_bytes
from tests.support.dicomweb import (
    DICOM_JSON,
    attribute,
    ct_study,
    dicomweb_client,
    mixed_study,
    parse_multipart,
    sample_file_with_new_uids,
    stow,
    unique_patient_id,
)

ORIGINALS = 'multipart/related; type="application/dicom"; transfer-syntax=*'
COMPRESSED_SAMPLES = [
    "JPEG2000.dcm", "MR_small_RLE.dcm", "JPEG-lossy.dcm", "MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_dcmtk.dcm",
    "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm",
]


@pytest.fixture(scope="module")
def stored(platform):
    """A CT study and a two-series study, stored in clinic A."""
    ct, mixed = ct_study(3), mixed_study()
    http = platform.http("clinic_a", "technologist")
    for study in (ct, mixed):
        assert stow(http, study.files).status_code == 200
    return ct, mixed


def get(platform, path: str, accept: str | None = None, role: str = "referring_physician", **headers):
    if accept is not None:
        headers["Accept"] = accept
    return platform.http("clinic_a", role).get(f"/dicomweb{path}", headers=headers)


def reachable(platform, uri: str) -> str:
    """The tests reach the tenant's domain through the live server's address and a Host header."""
    return uri.replace(f"http://{platform.host('clinic_a')}", platform.base_url)


def instance_path(study, index: int = 0) -> str:
    dataset = study.datasets[index]
    return f"/studies/{study.study_instance_uid}/series/{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}"


@pytest.mark.parametrize("name", COMPRESSED_SAMPLES)
def test_an_instance_comes_back_byte_for_byte_in_its_own_transfer_syntax(platform, name):
    data = sample_file_with_new_uids(name, patient_id=unique_patient_id())
    dataset = pydicom.dcmread(io.BytesIO(data))
    assert stow(platform.http("clinic_a", "technologist"), [data]).status_code == 200
    path = f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}"
    response = get(platform, path, ORIGINALS)
    assert response.status_code == 200
    [(headers, content)] = parse_multipart(response)
    assert content == data
    assert headers["content-type"] == f"application/dicom; transfer-syntax={dataset.file_meta.TransferSyntaxUID}"


def test_a_client_that_accepts_anything_gets_the_originals(platform, stored):
    ct, _ = stored
    response = get(platform, f"/studies/{ct.study_instance_uid}", "*/*")
    assert [content for _, content in parse_multipart(response)] == ct.files
    assert response.headers["Content-Type"].startswith('multipart/related; type="application/dicom"')
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_a_study_and_a_series_come_back_in_series_and_instance_order(platform, stored):
    _, mixed = stored
    study = get(platform, f"/studies/{mixed.study_instance_uid}", ORIGINALS)
    assert [content for _, content in parse_multipart(study)] == mixed.files
    series_uid = mixed.series_instance_uids[1]
    series = get(platform, f"/studies/{mixed.study_instance_uid}/series/{series_uid}", ORIGINALS)
    assert [content for _, content in parse_multipart(series)] == mixed.files[3:]


def test_explicit_vr_little_endian_is_the_default_and_is_decoded_from_compressed_originals(platform):
    original = compressed_copy(make_multiframe(number_of_frames=2, patient_id=unique_patient_id()), RLELossless)
    data = to_part10_bytes(original)
    stow(platform.http("clinic_a", "technologist"), [data])
    path = f"/studies/{original.StudyInstanceUID}/series/{original.SeriesInstanceUID}/instances/{original.SOPInstanceUID}"
    response = get(platform, path, 'multipart/related; type="application/dicom"')
    assert response.status_code == 200
    [(headers, content)] = parse_multipart(response)
    assert "transfer-syntax=1.2.840.10008.1.2.1" in headers["content-type"]
    transcoded = pydicom.dcmread(io.BytesIO(content))
    assert transcoded.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert transcoded.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(transcoded.pixel_array, pydicom.dcmread(io.BytesIO(data)).pixel_array)


def test_an_uncompressed_original_is_not_transcoded_for_explicit_vr_little_endian(platform, stored):
    ct, _ = stored
    response = get(platform, instance_path(ct), 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1')
    assert parse_multipart(response)[0][1] == ct.files[0]


def test_a_transfer_syntax_that_cannot_be_produced_is_406_with_a_json_body(platform, stored):
    ct, _ = stored
    response = get(platform, instance_path(ct), 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50')
    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"
    assert get(platform, instance_path(ct), "application/dicom+xml").status_code == 406


def test_quality_values_choose_among_what_is_accepted(platform, stored):
    ct, _ = stored
    accept = ('multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50; q=0.9, '
              'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5')
    assert get(platform, instance_path(ct), accept).status_code == 200


def test_a_single_instance_can_be_sent_bare_and_by_byte_range(platform, stored):
    ct, _ = stored
    whole = get(platform, instance_path(ct), "application/dicom; transfer-syntax=*")
    assert whole.content == ct.files[0]
    assert whole.headers["Accept-Ranges"] == "bytes"
    partial = get(platform, instance_path(ct), "application/dicom; transfer-syntax=*", Range="bytes=128-131")
    assert partial.status_code == 206
    assert partial.content == b"DICM"
    assert partial.headers["Content-Range"] == f"bytes 128-131/{len(ct.files[0])}"
    tail = get(platform, instance_path(ct), "application/dicom; transfer-syntax=*", Range="bytes=-10")
    assert tail.content == ct.files[0][-10:]
    beyond = get(platform, instance_path(ct), "application/dicom; transfer-syntax=*", Range=f"bytes={10**9}-")
    assert beyond.status_code == 416


def test_a_multipart_answer_can_be_resumed_by_range(platform, stored):
    ct, _ = stored
    whole = get(platform, f"/studies/{ct.study_instance_uid}", ORIGINALS)
    resumed = get(platform, f"/studies/{ct.study_instance_uid}", ORIGINALS, Range="bytes=1000-", **{"If-Range": whole.headers["ETag"]})
    assert resumed.status_code == 206
    assert resumed.content == whole.content[1000:]
    assert get(platform, f"/studies/{ct.study_instance_uid}", ORIGINALS,
               **{"If-None-Match": whole.headers["ETag"]}).status_code == 304


def test_a_study_can_be_retrieved_as_a_zip(platform, stored):
    _, mixed = stored
    response = get(platform, f"/studies/{mixed.study_instance_uid}", "application/zip")
    assert response.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        contents = [archive.read(name) for name in archive.namelist()]
    assert contents == mixed.files


def test_metadata_of_a_study_series_and_instance(platform, stored):
    _, mixed = stored
    study = get(platform, f"/studies/{mixed.study_instance_uid}/metadata", DICOM_JSON).json()
    assert [attribute(item, "00080018") for item in study] == mixed.sop_instance_uids
    series = get(platform, f"/studies/{mixed.study_instance_uid}/series/{mixed.series_instance_uids[0]}/metadata").json()
    assert len(series) == 3
    [instance] = get(platform, instance_path(mixed, 3) + "/metadata").json()
    assert attribute(instance, "00080060") == "MR"
    assert attribute(instance, "00100020") == mixed.patient_id
    assert "00280010" in instance and "7FE00010" in instance


def test_the_pixel_data_bulk_data_uri_resolves_to_the_pixel_data(platform, stored):
    ct, _ = stored
    [instance] = get(platform, instance_path(ct) + "/metadata").json()
    uri = instance["7FE00010"]["BulkDataURI"]
    # Absolute, on the domain the client called (the tests call it through the Host header).
    assert uri == f"http://{platform.host('clinic_a')}/dicomweb" + instance_path(ct) + "/bulkdata/7FE00010"
    response = platform.http("clinic_a", "referring_physician").get(reachable(platform, uri), headers={"Accept": "multipart/related; type=\"application/octet-stream\""})
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"].startswith("application/octet-stream")
    assert content == ct.datasets[0].PixelData


def test_metadata_changes_its_etag_when_the_study_grows(platform):
    study = ct_study(1)
    http = platform.http("clinic_a", "technologist")
    stow(http, study.files)
    first = get(platform, f"/studies/{study.study_instance_uid}/metadata")
    assert get(platform, f"/studies/{study.study_instance_uid}/metadata", **{"If-None-Match": first.headers["ETag"]}).status_code == 304
    more = ct_study(1, study_instance_uid=study.study_instance_uid, patient_id=study.patient_id)
    stow(http, more.files)
    second = get(platform, f"/studies/{study.study_instance_uid}/metadata", **{"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and len(second.json()) == 2


def test_frames_of_an_uncompressed_instance_are_octet_streams(platform):
    dataset = make_multiframe(number_of_frames=4, rows=8, columns=8, patient_id=unique_patient_id())
    stow(platform.http("clinic_a", "technologist"), [to_part10_bytes(dataset)])
    path = f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}"
    response = get(platform, path + "/frames/2,4", 'multipart/related; type="application/octet-stream"')
    parts = parse_multipart(response)
    frames = dataset.pixel_array
    assert [content for _, content in parts] == [frames[1].tobytes(), frames[3].tobytes()]
    assert parts[0][0]["content-type"] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert get(platform, path + "/frames/5").status_code == 404
    assert get(platform, path + "/frames/1", 'multipart/related; type="image/jpeg"').status_code == 406


def test_compressed_frames_come_as_stored_or_decoded(platform):
    original = compressed_copy(make_multiframe(number_of_frames=3, rows=16, columns=16, patient_id=unique_patient_id()),
                               RLELossless)
    stow(platform.http("clinic_a", "technologist"), [to_part10_bytes(original)])
    path = (f"/studies/{original.StudyInstanceUID}/series/{original.SeriesInstanceUID}/instances/"
            f"{original.SOPInstanceUID}/frames/2")
    # What OHIF asks for: any transfer syntax, labelled application/octet-stream.
    ohif = parse_multipart(get(platform, path, "multipart/related; type=application/octet-stream; transfer-syntax=*"))
    assert ohif[0][0]["content-type"] == f"application/octet-stream; transfer-syntax={RLELossless}"
    stored = parse_multipart(get(platform, path, 'multipart/related; type="image/dicom-rle"'))
    assert stored[0][0]["content-type"] == f"image/dicom-rle; transfer-syntax={RLELossless}"
    assert stored[0][1] == ohif[0][1]
    decoded = parse_multipart(get(platform, path, 'multipart/related; type="application/octet-stream"'))
    assert decoded[0][1] == original.pixel_array[1].tobytes()


def test_frames_can_be_transcoded_to_jpeg_2000(platform, stored):
    ct, _ = stored
    response = get(platform, instance_path(ct) + "/frames/1", 'multipart/related; type="image/jp2"')
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"].startswith("image/jp2")
    assert content[:4] in (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0c")


def test_unknown_resources_are_404_with_a_json_body(platform, stored):
    ct, _ = stored
    for path in ("/studies/1.2.3.999999", f"/studies/{ct.study_instance_uid}/series/1.2.3.4/metadata",
                 instance_path(ct) + "/bulkdata/00100010", "/studies/not-a-uid"):
        response = get(platform, path)
        assert response.status_code == 404, path


def test_every_retrieve_is_one_audit_event(platform, stored):
    from apps.audit.models import AuditEvent

    ct, _ = stored
    get(platform, f"/studies/{ct.study_instance_uid}", ORIGINALS)
    with platform.schema("clinic_a"):
        events = AuditEvent.objects.filter(action="dicomweb.retrieve", object_id=ct.study_instance_uid)
        assert events.count() >= 1
        event = events.order_by("-id").first()
    assert event.detail["instances"] == 3
    assert event.actor_name == "referring_physician-user"


# --- dicomweb-client, as a viewer or script would use it --------------------------------------------------


def test_dicomweb_client_stores_searches_and_retrieves(platform):
    client = dicomweb_client(platform, "clinic_a", "technologist")
    study = ct_study(2)
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in study.files]
    response = client.store_instances(datasets)
    assert len(response.ReferencedSOPSequence) == 2
    found = client.search_for_studies(search_filters={"PatientID": study.patient_id})
    assert [item["0020000D"]["Value"][0] for item in found] == [study.study_instance_uid]
    series = client.search_for_series(study.study_instance_uid)
    instances = client.search_for_instances(study.study_instance_uid, series[0]["0020000E"]["Value"][0])
    assert len(instances) == 2
    metadata = client.retrieve_study_metadata(study.study_instance_uid)
    assert len(metadata) == 2
    sop = study.sop_instance_uids[0]
    retrieved = client.retrieve_instance(study.study_instance_uid, study.series_instance_uids[0], sop)
    assert retrieved.SOPInstanceUID == sop
    assert np.array_equal(retrieved.pixel_array, datasets[0].pixel_array)
    originals = client.retrieve_study(study.study_instance_uid, media_types=(("application/dicom", "*"),))
    assert sorted(item.SOPInstanceUID for item in originals) == sorted(study.sop_instance_uids)
    frames = client.retrieve_instance_frames(study.study_instance_uid, study.series_instance_uids[0], sop, frame_numbers=[1])
    assert frames[0] == datasets[0].PixelData
    rendered = client.retrieve_instance_rendered(study.study_instance_uid, study.series_instance_uids[0], sop,
                                                 media_types=("image/jpeg",))
    assert rendered[:2] == b"\xff\xd8"
    [bulk] = client.retrieve_bulkdata(reachable(platform, metadata[0]["7FE00010"]["BulkDataURI"]))
    assert bulk == datasets[0].PixelData
