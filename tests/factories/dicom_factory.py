"""Realistic DICOM datasets built in memory, for every test suite.

Each ``make_*`` function returns a :class:`pydicom.Dataset` with its File Meta Information (Explicit
VR Little Endian) and the modules its IOD requires (PS3.3 Annex A): Patient, General Study, General
Series, Frame of Reference, General Equipment, General Image, Image Plane, Image Pixel, the modality
module, VOI LUT and SOP Common. Pixel data is synthetic but shaped like the real thing (a CT body
with lungs, spine and noise; an MR head; a chest radiograph), and deterministic for a given ``seed``.

Identifiers: every builder accepts the keyword arguments of :class:`DicomIdentifiers`
(``patient_id``, ``study_instance_uid``, ``accession_number``, ...). Those not given get realistic
defaults; UIDs not given are freshly generated, so two calls make two unrelated studies unless
you pass the same ``study_instance_uid``::

    study_uid = generate_uid()
    series = make_ct_series(3, rows=64, columns=64, patient_id="P-1", study_instance_uid=study_uid)
    scout = make_dx_image(patient_id="P-1", study_instance_uid=study_uid, series_number=2)
    part10 = [to_part10_bytes(dataset) for dataset in [*series, scout]]

Pixels: pass ``pixels`` (stored values, before Rescale Slope/Intercept) to control them exactly.
Compressed variants: ``compressed_copy(dataset, RLELossless)`` (or JPEG 2000 / JPEG-LS).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

AXIAL_ORIENTATION = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
CT_FIELD_OF_VIEW_MM = 350.0
MR_FIELD_OF_VIEW_MM = 240.0


class DicomIdentifiers(TypedDict, total=False):
    """Identifying attributes every builder accepts as keyword arguments (all optional)."""

    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    issuer_of_patient_id: str
    study_instance_uid: str
    study_id: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    referring_physician_name: str
    institution_name: str
    manufacturer: str
    series_instance_uid: str
    series_number: int
    series_description: str
    body_part_examined: str
    frame_of_reference_uid: str
    sop_instance_uid: str
    instance_number: int


_DEFAULT_IDENTIFIERS: dict[str, Any] = {
    "patient_id": "PAT-0001",
    "patient_name": "Test^Patient",
    "patient_birth_date": "19700101",
    "patient_sex": "F",
    "issuer_of_patient_id": "IMAGING-CLOUD-TEST",
    "study_id": "1",
    "study_date": "20260115",
    "study_time": "101500",
    "study_description": "",
    "accession_number": "ACC-0001",
    "referring_physician_name": "Referrer^Rita",
    "institution_name": "Imaging Cloud Test Hospital",
    "manufacturer": "Imaging Cloud Test Factory",
    "series_number": 1,
    "series_description": "",
    "body_part_examined": "",
    "instance_number": 1,
}


# --- builders ------------------------------------------------------------------------------------


def make_ct_slice(
    *,
    rows: int = 512,
    columns: int = 512,
    slice_position: float = 0.0,
    slice_thickness: float = 5.0,
    pixel_spacing: tuple[float, float] | None = None,
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    window_center: float | None = 40.0,
    window_width: float | None = 400.0,
    pixels: np.ndarray | None = None,
    seed: int = 0,
    **identifiers: Unpack[DicomIdentifiers],
) -> Dataset:
    """One axial CT Image Storage slice (PS3.3 §A.3), signed 16-bit stored values.

    Default pixels: a chest phantom in Hounsfield units (air -1000, fat -100, soft tissue 40, lungs
    -850, spine 700, noise sd 8 HU) at ``slice_position`` mm, stored as (HU - intercept) / slope.
    ``pixels`` overrides them with exact stored values (int16 array of shape rows x columns).
    """
    values = identifiers_with_defaults(identifiers, body_part_examined="CHEST", study_description="CT CHEST")
    dataset = _base_dataset(CTImageStorage, "CT", values)
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    spacing = pixel_spacing or (CT_FIELD_OF_VIEW_MM / rows, CT_FIELD_OF_VIEW_MM / columns)
    _set_image_plane(dataset, rows, columns, spacing, slice_position, slice_thickness)
    dataset.KVP = "120"
    dataset.AcquisitionNumber = 1
    dataset.ConvolutionKernel = "STANDARD"
    dataset.RescaleSlope = _decimal_string(rescale_slope)
    dataset.RescaleIntercept = _decimal_string(rescale_intercept)
    dataset.RescaleType = "HU"
    _set_window(dataset, window_center, window_width)
    if pixels is None:
        rng = np.random.default_rng(seed)
        hounsfield = ct_chest_phantom(rows, columns, slice_position=slice_position, rng=rng)
        pixels = np.rint((hounsfield - rescale_intercept) / rescale_slope)
        pixels = np.clip(pixels, -32768, 32767).astype(np.int16)
    _set_pixels(dataset, np.asarray(pixels, dtype=np.int16), "MONOCHROME2", bits_stored=16)
    return dataset


def make_ct_series(
    n_slices: int,
    *,
    rows: int = 512,
    columns: int = 512,
    first_slice_position: float = 0.0,
    slice_thickness: float = 5.0,
    sop_instance_uids: Sequence[str] | None = None,
    seed: int = 0,
    **identifiers: Unpack[DicomIdentifiers],
) -> list[Dataset]:
    """``n_slices`` contiguous axial CT slices of one series (same study, series and frame of reference).

    Slices are ``slice_thickness`` mm apart from ``first_slice_position`` (ImagePositionPatient z),
    numbered 1..n. Give ``sop_instance_uids`` to choose the instance UIDs; ``sop_instance_uid`` and
    ``instance_number`` are per slice and so are not accepted here.
    """
    if "sop_instance_uid" in identifiers or "instance_number" in identifiers:
        raise TypeError("make_ct_series numbers its slices itself; pass sop_instance_uids instead")
    if sop_instance_uids is not None and len(sop_instance_uids) != n_slices:
        raise ValueError(f"{len(sop_instance_uids)} SOP Instance UIDs given for {n_slices} slices")
    shared: DicomIdentifiers = {
        "study_instance_uid": identifiers.get("study_instance_uid") or generate_uid(),
        "series_instance_uid": identifiers.get("series_instance_uid") or generate_uid(),
        "frame_of_reference_uid": identifiers.get("frame_of_reference_uid") or generate_uid(),
    }
    slices = []
    for index in range(n_slices):
        per_slice: DicomIdentifiers = {**identifiers, **shared, "instance_number": index + 1}
        if sop_instance_uids is not None:
            per_slice["sop_instance_uid"] = sop_instance_uids[index]
        slices.append(
            make_ct_slice(
                rows=rows,
                columns=columns,
                slice_position=first_slice_position + index * slice_thickness,
                slice_thickness=slice_thickness,
                seed=seed + index,
                **per_slice,
            )
        )
    return slices


def make_mr_image(
    *,
    rows: int = 256,
    columns: int = 256,
    slice_position: float = 0.0,
    slice_thickness: float = 5.0,
    bits_stored: int = 12,
    window_center: float | None = None,
    window_width: float | None = None,
    pixels: np.ndarray | None = None,
    seed: int = 0,
    **identifiers: Unpack[DicomIdentifiers],
) -> Dataset:
    """One axial T2-weighted MR Image Storage image (PS3.3 §A.4), unsigned ``bits_stored``-bit values.

    Default pixels: a head phantom (scalp, dark skull, brain, bright ventricles) with Rician-like
    noise. MR has no rescale; give ``window_center``/``window_width`` to add a VOI window.
    """
    values = identifiers_with_defaults(identifiers, body_part_examined="HEAD", study_description="MR BRAIN")
    dataset = _base_dataset(MRImageStorage, "MR", values)
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    spacing = (MR_FIELD_OF_VIEW_MM / rows, MR_FIELD_OF_VIEW_MM / columns)
    _set_image_plane(dataset, rows, columns, spacing, slice_position, slice_thickness)
    dataset.ScanningSequence = "SE"
    dataset.SequenceVariant = "NONE"
    dataset.ScanOptions = ""
    dataset.MRAcquisitionType = "2D"
    dataset.RepetitionTime = "4000"
    dataset.EchoTime = "90"
    dataset.EchoTrainLength = "16"
    dataset.MagneticFieldStrength = "1.5"
    dataset.SpacingBetweenSlices = _decimal_string(slice_thickness)
    _set_window(dataset, window_center, window_width)
    if pixels is None:
        rng = np.random.default_rng(seed)
        pixels = mr_head_phantom(rows, columns, maximum=2**bits_stored - 1, rng=rng)
    _set_pixels(dataset, np.asarray(pixels, dtype=np.uint16), "MONOCHROME2", bits_stored=bits_stored)
    return dataset


def make_dx_image(
    *,
    rows: int = 512,
    columns: int = 512,
    photometric_interpretation: Literal["MONOCHROME1", "MONOCHROME2"] = "MONOCHROME2",
    bits_stored: int = 12,
    window_center: float | None = 2048.0,
    window_width: float | None = 4096.0,
    pixels: np.ndarray | None = None,
    seed: int = 0,
    **identifiers: Unpack[DicomIdentifiers],
) -> Dataset:
    """One PA chest Digital X-Ray Image Storage - For Presentation image (PS3.3 §A.26).

    The default anatomy looks the same whichever ``photometric_interpretation``: for MONOCHROME1 the
    stored values are inverted (the minimum is white, PS3.3 §C.7.6.3.1.2) and Presentation LUT Shape
    is INVERSE as §C.8.11.1.1.1 requires; for MONOCHROME2 it is IDENTITY.
    """
    values = identifiers_with_defaults(
        identifiers, body_part_examined="CHEST", study_description="XR CHEST PA"
    )
    dataset = _base_dataset(DigitalXRayImageStorageForPresentation, "DX", values)
    dataset.ImageType = ["ORIGINAL", "PRIMARY"]
    dataset.PresentationIntentType = "FOR PRESENTATION"
    dataset.ViewPosition = "PA"
    dataset.PatientOrientation = ["L", "F"]
    dataset.ImagerPixelSpacing = [_decimal_string(430.0 / rows), _decimal_string(430.0 / columns)]
    dataset.DetectorType = "SCINTILLATOR"
    dataset.PixelIntensityRelationship = "LOG"
    dataset.PixelIntensityRelationshipSign = 1 if photometric_interpretation == "MONOCHROME2" else -1
    dataset.RescaleSlope = "1"
    dataset.RescaleIntercept = "0"
    dataset.RescaleType = "US"
    dataset.PresentationLUTShape = "INVERSE" if photometric_interpretation == "MONOCHROME1" else "IDENTITY"
    dataset.LossyImageCompression = "00"
    dataset.BurnedInAnnotation = "NO"
    _set_window(dataset, window_center, window_width)
    if pixels is None:
        rng = np.random.default_rng(seed)
        maximum = 2**bits_stored - 1
        brightness = chest_radiograph_phantom(rows, columns, rng=rng)  # 0 (black) .. 1 (white)
        if photometric_interpretation == "MONOCHROME1":
            brightness = 1.0 - brightness
        pixels = np.rint(brightness * maximum).astype(np.uint16)
    _set_pixels(
        dataset, np.asarray(pixels, dtype=np.uint16), photometric_interpretation, bits_stored=bits_stored
    )
    return dataset


def make_multiframe(
    *,
    number_of_frames: int = 10,
    rows: int = 64,
    columns: int = 64,
    photometric_interpretation: Literal["MONOCHROME2", "RGB"] = "MONOCHROME2",
    bits_allocated: Literal[8, 16] = 8,
    pixels: np.ndarray | None = None,
    **identifiers: Unpack[DicomIdentifiers],
) -> Dataset:
    """A multi-frame Secondary Capture (PS3.3 §A.8.2-A.8.5): a disc moving across a gradient, one
    position per frame, so every frame differs from the others.

    SOP Class by pixels: Grayscale Byte (8-bit), Grayscale Word (16-bit) or True Color (RGB, 8-bit).
    ``pixels`` overrides the content: shape (frames, rows, columns[, 3]).
    """
    if photometric_interpretation == "RGB" and bits_allocated != 8:
        raise ValueError("multi-frame true colour secondary capture is 8 bits per sample")
    sop_class = {
        ("MONOCHROME2", 8): MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        ("MONOCHROME2", 16): MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        ("RGB", 8): MultiFrameTrueColorSecondaryCaptureImageStorage,
    }[(photometric_interpretation, bits_allocated)]
    values = identifiers_with_defaults(identifiers, study_description="CINE CAPTURE")
    dataset = _base_dataset(sop_class, "OT", values)
    _set_secondary_capture_equipment(dataset)
    dataset.ImageType = ["DERIVED", "SECONDARY"]
    dataset.FrameTime = "33.3"
    dataset.FrameIncrementPointer = 0x00181063  # Frame Time (PS3.3 §C.7.6.6.1.1)
    dataset.BurnedInAnnotation = "NO"
    if pixels is None:
        pixels = moving_disc_frames(number_of_frames, rows, columns, maximum=2**bits_allocated - 1)
        if photometric_interpretation == "RGB":
            pixels = np.stack([pixels, pixels[:, ::-1, :], np.roll(pixels, columns // 3, axis=2)], axis=-1)
    dtype = np.uint8 if bits_allocated == 8 else np.uint16
    frames = np.asarray(pixels, dtype=dtype)
    _set_pixels(dataset, frames, photometric_interpretation, bits_stored=bits_allocated)
    dataset.NumberOfFrames = frames.shape[0]  # kept even for a single frame: the IOD requires it
    return dataset


def make_secondary_capture(
    pixels: np.ndarray,
    *,
    photometric_interpretation: str | None = None,
    bits_stored: int | None = None,
    window_center: float | None = None,
    window_width: float | None = None,
    rescale_slope: float | None = None,
    rescale_intercept: float | None = None,
    **identifiers: Unpack[DicomIdentifiers],
) -> Dataset:
    """A single-frame Secondary Capture Image Storage (PS3.3 §A.8.1) with exactly the given pixels.

    For rendering tests: ``pixels`` (uint8/uint16/int8/int16, shape rows x columns, or rows x
    columns x 3) become the stored values; the photometric interpretation defaults to MONOCHROME2
    for one sample and RGB for three. Optional window and rescale attributes are added as given.
    """
    array = np.asarray(pixels)
    photometric = photometric_interpretation or ("RGB" if array.ndim == 3 else "MONOCHROME2")
    values = identifiers_with_defaults(identifiers)
    dataset = _base_dataset(SecondaryCaptureImageStorage, "OT", values)
    _set_secondary_capture_equipment(dataset)
    dataset.ImageType = ["DERIVED", "SECONDARY"]
    dataset.PatientOrientation = ""
    if rescale_slope is not None or rescale_intercept is not None:
        dataset.RescaleSlope = _decimal_string(1.0 if rescale_slope is None else rescale_slope)
        dataset.RescaleIntercept = _decimal_string(0.0 if rescale_intercept is None else rescale_intercept)
        dataset.RescaleType = "US"
    _set_window(dataset, window_center, window_width)
    _set_pixels(dataset, array, photometric, bits_stored=bits_stored or array.dtype.itemsize * 8)
    return dataset


# --- Part 10 and compression ---------------------------------------------------------------------


def to_part10_bytes(dataset: Dataset) -> bytes:
    """The dataset as a DICOM Part 10 file (preamble, DICM, File Meta; PS3.10 §7.1)."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def from_part10_bytes(data: bytes) -> Dataset:
    """Read a Part 10 file back (the inverse of ``to_part10_bytes``)."""
    return pydicom.dcmread(io.BytesIO(data))


def compressed_copy(dataset: Dataset, transfer_syntax_uid: str, **encoding_options: Any) -> Dataset:
    """A copy with its pixel data compressed to ``transfer_syntax_uid``, keeping the SOP Instance UID.

    RLE Lossless needs nothing extra; JPEG 2000 needs pylibjpeg-openjpeg (lossy JPEG 2000 also a
    ``j2k_cr=[ratio]`` option), JPEG-LS needs pyjpegls. Multi-frame data gets a Basic Offset Table.
    """
    compressed = copy.deepcopy(dataset)
    compressed.compress(transfer_syntax_uid, generate_instance_uid=False, **encoding_options)
    return compressed


# --- synthetic anatomy ---------------------------------------------------------------------------


def ct_chest_phantom(
    rows: int, columns: int, *, slice_position: float = 0.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Hounsfield units of an axial chest slice (float32): body, fat, mediastinum, lungs, spine, noise.

    The lungs grow and shrink with ``slice_position`` (mm) so a series is not the same slice repeated.
    """
    y, x = _normalised_grid(rows, columns)
    hounsfield = np.full((rows, columns), -1000.0, dtype=np.float32)
    body = (x / 0.85) ** 2 + (y / 0.62) ** 2 <= 1.0
    inner = (x / 0.80) ** 2 + (y / 0.57) ** 2 <= 1.0
    hounsfield[body] = -100.0  # subcutaneous fat
    hounsfield[inner] = 40.0  # soft tissue
    lung_scale = 0.75 + 0.25 * np.cos(slice_position / 120.0)
    for side in (-1.0, 1.0):
        lung = ((x - side * 0.36) / (0.24 * lung_scale)) ** 2 + ((y + 0.05) / (0.38 * lung_scale)) ** 2 <= 1.0
        hounsfield[lung] = -850.0
    heart = ((x - 0.06) / 0.17) ** 2 + ((y + 0.02) / 0.2) ** 2 <= 1.0
    hounsfield[heart] = 45.0
    spine = x**2 + ((y - 0.42) / 1.0) ** 2 <= 0.08**2
    hounsfield[spine] = 700.0
    if rng is not None:
        hounsfield += rng.normal(0.0, 8.0, size=hounsfield.shape).astype(np.float32)
    return hounsfield


def mr_head_phantom(
    rows: int, columns: int, *, maximum: int = 4095, rng: np.random.Generator | None = None
) -> np.ndarray:
    """An axial T2-weighted head (uint16 up to ``maximum``): scalp, dark skull, brain, bright ventricles."""
    y, x = _normalised_grid(rows, columns)
    signal = np.zeros((rows, columns), dtype=np.float32)
    radius = (x / 0.75) ** 2 + (y / 0.9) ** 2
    signal[radius <= 1.0] = 0.35  # scalp
    signal[radius <= 0.88] = 0.05  # skull
    signal[radius <= 0.78] = 0.45  # brain
    for side in (-1.0, 1.0):
        ventricle = ((x - side * 0.12) / 0.07) ** 2 + ((y + 0.05) / 0.25) ** 2 <= 1.0
        signal[ventricle] = 0.95
    if rng is not None:
        signal = np.abs(signal + rng.normal(0.0, 0.02, size=signal.shape).astype(np.float32))
    return np.clip(np.rint(signal * maximum), 0, maximum).astype(np.uint16)


def chest_radiograph_phantom(
    rows: int, columns: int, *, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Display brightness (0 black .. 1 white, float32) of a PA chest radiograph: dark lungs, bright
    mediastinum, spine and ribs."""
    y, x = _normalised_grid(rows, columns)
    brightness = np.full((rows, columns), 0.05, dtype=np.float32)  # direct exposure: black
    brightness[(x / 0.9) ** 2 + (y / 0.95) ** 2 <= 1.0] = 0.7  # body
    for side in (-1.0, 1.0):
        lung = ((x - side * 0.4) / 0.3) ** 2 + ((y + 0.05) / 0.65) ** 2 <= 1.0
        brightness[lung] = 0.25
        ribs = lung & (np.sin((y + 1.0) * 18.0) > 0.7)
        brightness[ribs] = 0.45
    brightness[np.abs(x) <= 0.08] = 0.85  # spine and mediastinum
    if rng is not None:
        brightness += rng.normal(0.0, 0.01, size=brightness.shape).astype(np.float32)
    return np.clip(brightness, 0.0, 1.0)


def moving_disc_frames(number_of_frames: int, rows: int, columns: int, *, maximum: int = 255) -> np.ndarray:
    """Frames (frames x rows x columns, uint16) of a bright disc crossing a horizontal gradient."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    background = (x / max(columns - 1, 1)) * (maximum * 0.5)
    frames = np.empty((number_of_frames, rows, columns), dtype=np.uint16)
    radius = max(min(rows, columns) / 6.0, 1.0)
    for index in range(number_of_frames):
        centre_x = radius + (columns - 2 * radius) * index / max(number_of_frames - 1, 1)
        disc = (x - centre_x) ** 2 + (y - rows / 2.0) ** 2 <= radius**2
        frames[index] = np.where(disc, maximum, np.rint(background)).astype(np.uint16)
    return frames


# --- module helpers ------------------------------------------------------------------------------


def identifiers_with_defaults(identifiers: DicomIdentifiers, **modality_defaults: Any) -> dict[str, Any]:
    """The identifiers given, completed with modality defaults, general defaults and fresh UIDs."""
    unknown = set(identifiers) - set(DicomIdentifiers.__annotations__)
    if unknown:
        raise TypeError(f"unknown identifier keyword(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {**_DEFAULT_IDENTIFIERS, **modality_defaults, **identifiers}
    for uid_keyword in (
        "study_instance_uid",
        "series_instance_uid",
        "frame_of_reference_uid",
        "sop_instance_uid",
    ):
        if not values.get(uid_keyword):
            values[uid_keyword] = generate_uid()
    return values


def _base_dataset(sop_class_uid: str, modality: str, values: dict[str, Any]) -> Dataset:
    """Patient, General Study, General Series, Frame of Reference, General Equipment, General Image
    and SOP Common modules (PS3.3 §C.7.1.1, §C.7.2.1, §C.7.3.1, §C.7.4.1, §C.7.5.1, §C.7.6.1, §C.12.1),
    plus the File Meta Information (PS3.10 §7.1)."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    dataset.file_meta.MediaStorageSOPInstanceUID = values["sop_instance_uid"]
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, so tests may use any name
    dataset.SOPClassUID = sop_class_uid
    dataset.SOPInstanceUID = values["sop_instance_uid"]
    dataset.InstanceCreationDate = values["study_date"]
    dataset.InstanceCreationTime = values["study_time"]

    dataset.PatientName = values["patient_name"]
    dataset.PatientID = values["patient_id"]
    dataset.IssuerOfPatientID = values["issuer_of_patient_id"]
    dataset.PatientBirthDate = values["patient_birth_date"]
    dataset.PatientSex = values["patient_sex"]

    dataset.StudyInstanceUID = values["study_instance_uid"]
    dataset.StudyID = values["study_id"]
    dataset.StudyDate = values["study_date"]
    dataset.StudyTime = values["study_time"]
    dataset.StudyDescription = values["study_description"]
    dataset.AccessionNumber = values["accession_number"]
    dataset.ReferringPhysicianName = values["referring_physician_name"]

    dataset.Modality = modality
    dataset.SeriesInstanceUID = values["series_instance_uid"]
    dataset.SeriesNumber = values["series_number"]
    dataset.SeriesDescription = values["series_description"]
    dataset.SeriesDate = values["study_date"]
    dataset.SeriesTime = values["study_time"]
    if values["body_part_examined"]:
        dataset.BodyPartExamined = values["body_part_examined"]

    dataset.FrameOfReferenceUID = values["frame_of_reference_uid"]
    dataset.PositionReferenceIndicator = ""

    dataset.Manufacturer = values["manufacturer"]
    dataset.InstitutionName = values["institution_name"]

    dataset.InstanceNumber = values["instance_number"]
    dataset.ContentDate = values["study_date"]
    dataset.ContentTime = values["study_time"]
    return dataset


def _set_secondary_capture_equipment(dataset: Dataset) -> None:
    """SC Equipment Module (PS3.3 §C.8.6.1): the image was captured by a workstation."""
    dataset.ConversionType = "WSD"
    del dataset.FrameOfReferenceUID  # Secondary Capture IODs have no Frame of Reference module
    del dataset.PositionReferenceIndicator


def _set_image_plane(
    dataset: Dataset,
    rows: int,
    columns: int,
    pixel_spacing: tuple[float, float],
    slice_position: float,
    slice_thickness: float,
) -> None:
    """Image Plane Module (PS3.3 §C.7.6.2) for an axial slice centred on the patient's z axis."""
    row_spacing, column_spacing = pixel_spacing
    dataset.PixelSpacing = [_decimal_string(row_spacing), _decimal_string(column_spacing)]
    dataset.ImageOrientationPatient = AXIAL_ORIENTATION
    dataset.ImagePositionPatient = [
        _decimal_string(-column_spacing * (columns - 1) / 2.0),
        _decimal_string(-row_spacing * (rows - 1) / 2.0),
        _decimal_string(slice_position),
    ]
    dataset.SliceThickness = _decimal_string(slice_thickness)
    dataset.SliceLocation = _decimal_string(slice_position)


def _set_window(dataset: Dataset, center: float | None, width: float | None) -> None:
    """VOI LUT Module window (PS3.3 §C.11.2), only when both values are given."""
    if center is not None and width is not None:
        dataset.WindowCenter = _decimal_string(center)
        dataset.WindowWidth = _decimal_string(width)


def _set_pixels(
    dataset: Dataset, pixels: np.ndarray, photometric_interpretation: str, *, bits_stored: int
) -> None:
    """Image Pixel Module (PS3.3 §C.7.6.3) from an array, native little endian."""
    dataset.set_pixel_data(pixels, photometric_interpretation, bits_stored, generate_instance_uid=False)


def _normalised_grid(rows: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centre coordinates scaled to -1 .. 1 along each axis (y down, x right)."""
    y = np.linspace(-1.0, 1.0, rows, dtype=np.float32)[:, np.newaxis]
    x = np.linspace(-1.0, 1.0, columns, dtype=np.float32)[np.newaxis, :]
    return np.broadcast_to(y, (rows, columns)), np.broadcast_to(x, (rows, columns))


def _decimal_string(value: float) -> str:
    """A Decimal String (DS, at most 16 characters, PS3.5 Table 6.2-1) for a float."""
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.8e}"[:16]


_NESTED_SEQUENCE_HEAD = (
    b"\x00\x04\x61\x05SQ\x00\x00\xff\xff\xff\xff"  # (0400,0561) Original Attributes Sequence, undefined length
    b"\xfe\xff\x00\xe0\xff\xff\xff\xff"  # an item of undefined length
)
_NESTED_SEQUENCE_TAIL = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # item, sequence end
_PIXEL_DATA_HEADERS = (b"\xe0\x7f\x10\x00OW", b"\xe0\x7f\x10\x00OB")


def with_nested_sequences(part10: bytes, depth: int) -> bytes:
    """An explicit VR little endian Part 10 file with sequences nested `depth` deep put in just
    before its pixel data (encoded by hand: pydicom's writer recurses once per level)."""
    position = max(part10.rfind(header) for header in _PIXEL_DATA_HEADERS)
    if position < 0:
        raise ValueError("the file has no explicit VR pixel data element")
    nested = _NESTED_SEQUENCE_HEAD * depth + _NESTED_SEQUENCE_TAIL * depth
    return part10[:position] + nested + part10[position:]
