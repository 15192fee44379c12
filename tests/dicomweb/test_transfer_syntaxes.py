"""Transfer syntaxes of WADO-RS answers (PS3.18 §8.7.3): what is sent when an instance cannot be
decoded, the syntaxes web services never use, bulk data in the syntax asked for, deflated instances,
damaged pixel data, and 12-bit JPEG Extended rendering."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_fragments
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from tests.factories.dicom_factory import compressed_copy, make_multiframe, to_part10_bytes
from tests.support.dicomweb import Study, ct_study, parse_multipart, stow, unique_patient_id

DICOM_DEFAULT = 'multipart/related; type="application/dicom"'
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
# pydicom's sample whose JPEG 2000 codestream no installed decoder reads (its header is damaged).
UNDECODABLE_JPEG2000 = "JPEG2000-embedded-sequence-delimiter.dcm"


def sample_in_study(name: str, study: Study | None = None, *, transfer_syntax_uid: str | None = None) -> bytes:
    """A pydicom sample file with fresh UIDs, in `study` (same patient) or a new one of its own."""
    dataset = pydicom.dcmread(get_testdata_file(name))
    source = study.datasets[0] if study else None
    dataset.StudyInstanceUID = source.StudyInstanceUID if source else generate_uid()
    dataset.PatientID = source.PatientID if source else unique_patient_id("TS")
    dataset.PatientName = source.PatientName if source else "SAMPLE^TS"
    dataset.PatientBirthDate = source.PatientBirthDate if source else ""
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    if transfer_syntax_uid:
        dataset.file_meta.TransferSyntaxUID = transfer_syntax_uid
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def path_of(data: bytes) -> str:
    dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return f"/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}/instances/{dataset.SOPInstanceUID}"


def get(platform, path: str, accept: str):
    return platform.http("clinic_a", "referring_physician").get(f"/dicomweb{path}", headers={"Accept": accept})


def store(platform, *files: bytes) -> None:
    response = stow(platform.http("clinic_a", "technologist"), list(files))
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def study_with_an_undecodable_instance(platform):
    """A 2-slice CT study (Explicit VR Little Endian) and, in its own series, an instance whose lossy
    JPEG 2000 pixel data no decoder here reads."""
    ct = ct_study(2)
    odd = sample_in_study(UNDECODABLE_JPEG2000, ct)
    store(platform, *ct.files, odd)
    return ct, odd


# --- PS3.18 §8.7.3: the representation of every instance is decided before the first byte -----------------


def test_a_study_with_an_undecodable_lossy_instance_comes_whole_with_it_as_stored_ps3_18_8_7_3(
    platform, study_with_an_undecodable_instance
):
    ct, odd = study_with_an_undecodable_instance

    response = get(platform, f"/studies/{ct.study_instance_uid}", DICOM_DEFAULT)

    assert response.status_code == 200
    sent = {content: headers["content-type"] for headers, content in parse_multipart(response)}
    assert sent == {
        ct.files[0]: f"application/dicom; transfer-syntax={EXPLICIT_LITTLE}",
        ct.files[1]: f"application/dicom; transfer-syntax={EXPLICIT_LITTLE}",
        odd: "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.91",
    }


def test_a_named_transfer_syntax_one_instance_cannot_reach_is_406_before_streaming_ps3_18_8_7_3(
    platform, study_with_an_undecodable_instance
):
    ct, _ = study_with_an_undecodable_instance

    response = get(platform, f"/studies/{ct.study_instance_uid}", f"{DICOM_DEFAULT}; transfer-syntax={EXPLICIT_LITTLE}")

    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"


def test_a_single_undecodable_instance_asked_for_in_explicit_vr_little_endian_is_406_not_500_ps3_18_8_7_3(
    platform, study_with_an_undecodable_instance
):
    _, odd = study_with_an_undecodable_instance

    response = get(platform, path_of(odd), f"application/dicom; transfer-syntax={EXPLICIT_LITTLE}")

    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"


def test_an_undecodable_lossless_instance_is_406_under_the_default_transfer_syntax_ps3_18_8_7_3(platform):
    # Only pixel data held in lossy form may stay as stored when no transfer syntax is named.
    lossless = sample_in_study(UNDECODABLE_JPEG2000, transfer_syntax_uid=JPEG2000Lossless)
    store(platform, lossless)

    single = get(platform, path_of(lossless), "application/dicom")
    multipart = get(platform, path_of(lossless), DICOM_DEFAULT)

    assert (single.status_code, multipart.status_code) == (406, 406)
    assert multipart.json()["code"] == "not_acceptable"


def test_a_damaged_multiframe_instance_is_406_before_streaming_in_explicit_vr_little_endian_ps3_18_8_7_3(platform):
    damaged = damaged_multiframe()
    store(platform, damaged)

    response = get(platform, path_of(damaged), DICOM_DEFAULT)

    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"


# --- PS3.18 §8.7.3: Implicit VR Little Endian and Explicit VR Big Endian are not used in web services --------


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.2"])
def test_implicit_little_and_explicit_big_endian_are_never_sent_when_asked_for_ps3_18_8_7_3(platform, syntax):
    implicit = sample_in_study("MR_small_implicit.dcm")
    store(platform, implicit)

    instance = get(platform, path_of(implicit), f"{DICOM_DEFAULT}; transfer-syntax={syntax}")
    frames = get(platform, path_of(implicit) + "/frames/1",
                 f'multipart/related; type="application/octet-stream"; transfer-syntax={syntax}')

    assert (instance.status_code, frames.status_code) == (406, 406)
    assert instance.json()["code"] == "not_acceptable"


def test_an_implicit_vr_original_is_sent_as_explicit_vr_little_endian_by_default_ps3_18_8_7_3(platform):
    implicit = sample_in_study("MR_small_implicit.dcm")
    store(platform, implicit)

    response = get(platform, path_of(implicit), DICOM_DEFAULT)

    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT_LITTLE}"
    assert pydicom.dcmread(io.BytesIO(content)).file_meta.TransferSyntaxUID == EXPLICIT_LITTLE


# --- PS3.18 §8.7.3.3.2, Table 8.7.3-4: bulk data in the transfer syntax asked for ----------------------------


def pixel_data_uri(platform, data: bytes) -> str:
    [instance] = get(platform, path_of(data) + "/metadata", "application/dicom+json").json()
    uri = instance["7FE00010"]["BulkDataURI"]
    return uri.replace(f"http://{platform.host('clinic_a')}", platform.base_url)


def test_compressed_pixel_data_asked_for_as_octet_stream_is_uncompressed_ps3_18_table_8_7_3_4(platform):
    native = make_multiframe(number_of_frames=3, patient_id=unique_patient_id())
    data = to_part10_bytes(compressed_copy(native, RLELossless))
    store(platform, data)

    response = platform.http("clinic_a", "referring_physician").get(
        pixel_data_uri(platform, data), headers={"Accept": 'multipart/related; type="application/octet-stream"'})

    assert response.status_code == 200
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LITTLE}"
    assert content == native.PixelData


def test_the_metadata_of_a_deflated_instance_names_its_pixel_data_ps3_18_8_7_3(platform):
    deflated = sample_in_study("image_dfl.dcm")
    store(platform, deflated)

    response = platform.http("clinic_a", "referring_physician").get(
        pixel_data_uri(platform, deflated), headers={"Accept": 'multipart/related; type="application/octet-stream"'})

    assert response.status_code == 200
    [(headers, content)] = parse_multipart(response)
    assert headers["content-type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LITTLE}"
    assert content == pydicom.dcmread(io.BytesIO(deflated)).PixelData


def damaged_multiframe() -> bytes:
    """A 15-frame RLE instance whose pixel data holds only its first frame."""
    dataset = compressed_copy(make_multiframe(number_of_frames=15, patient_id=unique_patient_id()), RLELossless)
    first_frame = list(generate_fragments(dataset.PixelData))[1]
    dataset.PixelData = encapsulate([first_frame], has_bot=False)
    return to_part10_bytes(dataset)


def test_damaged_multiframe_pixel_data_is_an_error_never_a_partial_200_ps3_18_8_7_3(platform):
    damaged = damaged_multiframe()
    store(platform, damaged)

    response = platform.http("clinic_a", "referring_physician").get(
        pixel_data_uri(platform, damaged), headers={"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'})

    assert response.status_code == 500
    assert response.json()["code"] == "instance_unreadable"


# --- PS3.18 §10.4.1.1.3: 12-bit JPEG Extended renders --------------------------------------------------------


@pytest.mark.parametrize("resource", ["/rendered", "/thumbnail"])
def test_a_12_bit_jpeg_extended_instance_renders_ps3_18_10_4_1_1_3(platform, resource):
    jpeg_extended = sample_in_study("JPEG-lossy.dcm")  # 1.2.840.10008.1.2.4.51, Bits Stored 12
    store(platform, jpeg_extended)

    response = get(platform, path_of(jpeg_extended) + resource, "image/png")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(response.content)))
    assert pixels.std() > 10  # an image, not a blank
