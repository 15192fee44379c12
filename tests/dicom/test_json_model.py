"""The DICOM JSON model (PS3.18 Annex F): values by VR, person names by component group, bulk values
as BulkDataURIs never read, and round trips through pydicom's reader."""

import io
import json

import pydicom
from pydicom.dataset import Dataset

from apps.dicom.headers import read_instance_header
from apps.dicom.json_model import attributes_to_json, dataset_to_json, dumps
from tests.factories.dicom_factory import make_ct_slice, to_part10_bytes
from tests.support.dicomweb import sample_bytes


def test_values_follow_their_vr():
    dataset = Dataset()
    dataset.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    dataset.ImageType = ["ORIGINAL", "", "AXIAL"]
    dataset.SliceThickness = "5.0"
    dataset.InstanceNumber = "12"
    dataset.Rows = 512
    dataset.FrameIncrementPointer = 0x00181063
    dataset.StudyDescription = ""
    document = dataset_to_json(dataset)
    assert document["00100010"] == {"vr": "PN", "Value": [
        {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
    ]}
    assert document["00080008"]["Value"] == ["ORIGINAL", None, "AXIAL"]
    assert document["00180050"] == {"vr": "DS", "Value": [5]}
    assert document["00200013"] == {"vr": "IS", "Value": [12]}
    assert document["00280010"] == {"vr": "US", "Value": [512]}
    assert document["00280009"] == {"vr": "AT", "Value": ["00181063"]}
    assert document["00081030"] == {"vr": "LO"}
    assert list(document) == sorted(document)


def test_long_binary_values_become_bulk_data_uris_and_short_ones_inline():
    dataset = Dataset()
    dataset.add_new(0x00291010, "OB", b"\x01" * 4096)
    dataset.add_new(0x00291020, "OB", b"\x01\x02")
    item = Dataset()
    item.add_new(0x00420011, "OB", b"\x00" * 2000)
    dataset.add_new(0x00400275, "SQ", [item])
    document = dataset_to_json(dataset, bulk_data_uri=lambda path: f"/bulk/{path}")
    assert document["00291010"] == {"vr": "OB", "BulkDataURI": "/bulk/00291010"}
    assert document["00291020"] == {"vr": "OB", "InlineBinary": "AQI="}
    assert document["00400275"]["Value"][0]["00420011"] == {"vr": "OB", "BulkDataURI": "/bulk/00400275/0/00420011"}


def test_deferred_values_are_referenced_without_being_read():
    data = sample_bytes("examples_overlay.dcm")
    header = read_instance_header(data, len(data))
    document = dataset_to_json(header.dataset, bulk_data_uri=lambda path: f"/bulk/{path}")
    assert document["60003000"]["BulkDataURI"] == "/bulk/60003000"
    assert header.dataset.get_item(0x60003000, keep_deferred=True).value is None


def test_the_json_reads_back_into_the_same_attributes():
    dataset = make_ct_slice(rows=16, columns=16, patient_name="Müller^Jörg")
    data = to_part10_bytes(dataset)
    header = read_instance_header(data, len(data))
    text = dumps(dataset_to_json(header.dataset))
    restored = Dataset.from_json(json.loads(text))
    original = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    for keyword in ("PatientName", "SOPInstanceUID", "ImagePositionPatient", "RescaleIntercept", "Rows", "StudyDate"):
        assert restored.data_element(keyword).value == original.data_element(keyword).value, keyword


def test_flat_attribute_mappings_become_json():
    document = attributes_to_json({"PatientName": "DOE^JANE", "SeriesNumber": 3, "Modality": "CT", "Unknown": "x"})
    assert document == {
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
        "00200011": {"vr": "IS", "Value": [3]},
    }
