"""Sample studies for the demo (`manage.py demo`): loaded through the same ingest service as STOW-RS.

- pydicom's bundled CT_small.dcm and MR_small.dcm (real scanner headers, small images);
- a generated 40-slice chest CT (512 × 512) and a PA chest radiograph (DX), with fixed UIDs.

Idempotent: every UID is fixed, so loading again finds each instance already stored (a success
that writes nothing new). The generated pixels are simple synthetic anatomy, made here rather than
with the test factories so the production image (which has no tests/) can load them too.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
)

from apps.archive.services.ingest import StreamPart, instances_store
from apps.audit.services import Actor

DEMO_ACTOR = Actor.system("demo")
CT_SLICES = 40
BUNDLED_SAMPLES = ("CT_small.dcm", "MR_small.dcm")


def demo_uid(name: str) -> str:
    """A fixed UID for a demo object: 2.25 + a number from its name (PS3.5 §B.2)."""
    return "2.25." + str(int(hashlib.sha256(f"imaging-cloud-demo:{name}".encode()).hexdigest()[:30], 16))


@dataclass(frozen=True)
class SampleSummary:
    files: int
    stored: int
    already_stored: int
    failed: int


def _base(sop_class: UID, modality: str, *, patient_id: str, patient_name: str, study: str, series: str,
          sop: str, description: str, series_description: str) -> Dataset:
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.file_meta.MediaStorageSOPInstanceUID = UID(sop)
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = sop
    dataset.StudyDate = dataset.SeriesDate = "20260110"
    dataset.StudyTime = dataset.SeriesTime = "093000"
    dataset.AccessionNumber = "DEMO-" + study[-6:]
    dataset.Modality = modality
    dataset.Manufacturer = "Imaging Cloud demo"
    dataset.ReferringPhysicianName = "Welby^Marcus"
    dataset.StudyDescription = description
    dataset.SeriesDescription = series_description
    dataset.PatientName = patient_name
    dataset.PatientID = patient_id
    dataset.PatientBirthDate = "19640312"
    dataset.PatientSex = "F"
    dataset.StudyInstanceUID = study
    dataset.SeriesInstanceUID = series
    dataset.StudyID = "1"
    dataset.SeriesNumber = 1
    dataset.BodyPartExamined = "CHEST"
    return dataset


def _pixels(dataset: Dataset, pixels: np.ndarray, photometric: str, bits_stored: int, signed: bool) -> None:
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.BitsAllocated = 16
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 1 if signed else 0
    dataset.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()


def _chest_ct_slice(size: int, position: float) -> np.ndarray:
    y, x = np.mgrid[-1:1:complex(0, size), -1:1:complex(0, size)].astype(np.float32)
    hounsfield = np.full((size, size), -1000.0, dtype=np.float32)
    hounsfield[(x / 0.85) ** 2 + (y / 0.62) ** 2 <= 1] = 40.0
    lung = 0.75 + 0.25 * np.cos(position / 120.0)
    for side in (-1.0, 1.0):
        hounsfield[((x - side * 0.36) / (0.24 * lung)) ** 2 + ((y + 0.05) / (0.38 * lung)) ** 2 <= 1] = -850.0
    hounsfield[x**2 + (y - 0.42) ** 2 <= 0.0064] = 700.0
    noise = np.random.default_rng(int(position) + 7).normal(0.0, 8.0, hounsfield.shape).astype(np.float32)
    return np.rint(hounsfield + noise + 1024.0)


def _generated_ct() -> list[bytes]:
    study, series = demo_uid("ct-study"), demo_uid("ct-series")
    frame_of_reference = demo_uid("ct-frame-of-reference")
    files = []
    for index in range(CT_SLICES):
        position = index * 5.0
        dataset = _base(
            CTImageStorage, "CT", patient_id="DEMO-0002", patient_name="Sample^Chest", study=study, series=series,
            sop=demo_uid(f"ct-slice-{index}"), description="CT CHEST", series_description="Chest 5 mm",
        )
        dataset.InstanceNumber = index + 1
        dataset.FrameOfReferenceUID = frame_of_reference
        dataset.ImagePositionPatient = [-175.0, -175.0, position]
        dataset.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        dataset.SliceThickness = "5"
        dataset.PixelSpacing = ["0.68359375", "0.68359375"]
        dataset.RescaleIntercept = "-1024"
        dataset.RescaleSlope = "1"
        dataset.RescaleType = "HU"
        dataset.WindowCenter = "40"
        dataset.WindowWidth = "400"
        _pixels(dataset, _chest_ct_slice(512, position), "MONOCHROME2", 16, signed=True)
        files.append(_part10(dataset))
    return files


def _generated_dx() -> bytes:
    dataset = _base(
        DigitalXRayImageStorageForPresentation, "DX", patient_id="DEMO-0002", patient_name="Sample^Chest",
        study=demo_uid("dx-study"), series=demo_uid("dx-series"), sop=demo_uid("dx-image"),
        description="XR CHEST PA", series_description="PA",
    )
    dataset.InstanceNumber = 1
    dataset.PresentationIntentType = "FOR PRESENTATION"
    dataset.ViewPosition = "PA"
    dataset.ImagerPixelSpacing = ["0.2", "0.2"]
    y, x = np.mgrid[-1:1:1024j, -1:1:1024j].astype(np.float32)
    brightness = np.full(x.shape, 0.05, dtype=np.float32)
    brightness[(x / 0.9) ** 2 + (y / 0.95) ** 2 <= 1] = 0.7
    for side in (-1.0, 1.0):
        brightness[((x - side * 0.4) / 0.3) ** 2 + ((y + 0.05) / 0.65) ** 2 <= 1] = 0.25
    brightness[np.abs(x) <= 0.08] = 0.85
    dataset.WindowCenter = "2048"
    dataset.WindowWidth = "4096"
    dataset.PresentationLUTShape = "IDENTITY"
    _pixels(dataset, np.rint(brightness * 4095), "MONOCHROME2", 12, signed=False)
    return _part10(dataset)


def _part10(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def sample_files() -> list[bytes]:
    files = [Path(get_testdata_file(name)).read_bytes() for name in BUNDLED_SAMPLES]  # type: ignore[arg-type]
    return [*files, *_generated_ct(), _generated_dx()]


def load_sample_studies(*, tenant: object | None = None) -> SampleSummary:
    """Load the samples into the current tenant's archive (run inside its schema); safe to repeat."""
    files = sample_files()
    report = instances_store(parts=[StreamPart(io.BytesIO(data)) for data in files], actor=DEMO_ACTOR, via="demo")
    already = sum(1 for item in report.stored if item.already_stored)
    return SampleSummary(
        files=len(files), stored=len(report.stored) - already, already_stored=already, failed=len(report.failed)
    )
