"""The contract between the platform and an inference engine.

An engine declares what it accepts and produces (``EngineDescriptor``), takes one CT/MR volume
(``VolumeInput``, built from a single series by ``volume_from_datasets``) and returns an
``EngineResult``: findings with their measurements and masks, a JSON-able summary and an
optional label volume. Nothing here imports Django; jobs, routing and storage wrap it later.

Geometry follows DICOM PS3.3 C.7.6.2 (Image Plane Module): Image Orientation (Patient) gives
the row and column direction cosines in the patient coordinate system (LPS: +x to the patient's
left, +y to posterior, +z to head), Image Position (Patient) the centre of the first voxel,
Pixel Spacing the distance between rows then between columns. Volumes here are indexed
``[slice, row, column]`` (z, y, x); slices are ordered along the slice normal (row × column
direction), increasing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

# Two slices further apart or nearer than this fraction of the median gap make the series
# non-uniform: resampling it silently would distort every measurement in mm.
SLICE_GAP_TOLERANCE_FRACTION = 0.05
# Direction cosines and pixel spacings equal within this are "the same" (rounding in headers).
GEOMETRY_TOLERANCE = 1e-3


class OutputKind(enum.StrEnum):
    """What an engine produces; routing uses it to know which archive objects will appear."""

    SEGMENTATION = "SEG"  # DICOM Segmentation, PS3.3 A.51
    STRUCTURED_REPORT = "SR"  # DICOM Comprehensive 3D SR, PS3.3 A.35.13, TID 1500
    JSON = "JSON"  # the summary dictionary only


class VolumeRefused(ValueError):
    """The datasets cannot form one volume (mixed series, unequal geometry, missing headers)."""


class VolumeNotAccepted(ValueError):
    """An engine was given a volume its descriptor does not accept (see ``refusal_reasons``)."""

    def __init__(self, engine_name: str, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__(f"{engine_name} does not accept this volume: " + "; ".join(self.reasons))


@dataclass(frozen=True)
class EngineDescriptor:
    """Identity and admission rules of an engine, shown in the registry and used by routing.

    ``modalities`` and ``body_parts`` are DICOM defined terms: Modality (0008,0060) and Body Part
    Examined (0018,0015, PS3.16 CID 4031 "Common Anatomic Regions" code meanings such as CHEST).
    An empty ``body_parts`` accepts any body part (the header is often missing in practice).
    """

    name: str
    version: str
    vendor: str
    description: str
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...]
    minimum_slices: int
    outputs: tuple[OutputKind, ...]

    def refusal_reasons(self, volume: VolumeInput) -> list[str]:
        """Why this engine would not accept ``volume``; an empty list means it accepts it."""
        reasons: list[str] = []
        if self.modalities and volume.modality not in self.modalities:
            reasons.append(f"modality {volume.modality!r} is not one of {list(self.modalities)}")
        if self.body_parts and volume.body_part_examined is not None:
            if volume.body_part_examined.upper() not in self.body_parts:
                reasons.append(
                    f"body part {volume.body_part_examined!r} is not one of {list(self.body_parts)}"
                )
        if volume.slice_count < self.minimum_slices:
            reasons.append(f"{volume.slice_count} slices, fewer than the {self.minimum_slices} required")
        return reasons

    def check_accepts(self, volume: VolumeInput) -> None:
        """Raise ``VolumeNotAccepted`` unless this engine accepts ``volume``."""
        reasons = self.refusal_reasons(volume)
        if reasons:
            raise VolumeNotAccepted(self.name, reasons)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "vendor": self.vendor,
            "description": self.description,
            "accepts": {
                "modalities": list(self.modalities),
                "body_parts": list(self.body_parts),
                "minimum_slices": self.minimum_slices,
            },
            "outputs": [output.value for output in self.outputs],
        }


@dataclass(frozen=True)
class VolumeInput:
    """One series as a 3D array in Hounsfield units (CT) or stored-value units (other modalities).

    ``voxels`` is indexed [z, y, x] = [slice, row, column]; ``spacing_mm`` is (slice gap, row
    spacing, column spacing) in the same order; ``origin_mm`` is the Image Position (Patient) of
    the first slice; ``row_direction``/``column_direction`` are the two direction cosines of
    Image Orientation (Patient) and ``slice_direction`` their cross product, along which the
    slices are sorted. ``sop_instance_uids[k]`` is the instance that produced ``voxels[k]``.
    """

    voxels: NDArray[np.float32]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    row_direction: tuple[float, float, float]
    column_direction: tuple[float, float, float]
    slice_direction: tuple[float, float, float]
    modality: str
    body_part_examined: str | None
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_class_uid: str
    sop_instance_uids: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        z, y, x = self.voxels.shape
        return (int(z), int(y), int(x))

    @property
    def slice_count(self) -> int:
        return int(self.voxels.shape[0])

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing_mm))

    def voxel_to_patient_matrix(self) -> NDArray[np.float64]:
        """4×4 affine from (z, y, x, 1) voxel indices to (x, y, z, 1) patient coordinates in mm.

        Per PS3.3 C.7.6.2.1.1: P = S + column·Δc·row_direction + row·Δr·column_direction, with
        the slice offset added along the slice normal.
        """
        slice_gap, row_spacing, column_spacing = self.spacing_mm
        affine = np.eye(4)
        affine[:3, 0] = np.asarray(self.slice_direction) * slice_gap
        affine[:3, 1] = np.asarray(self.column_direction) * row_spacing
        affine[:3, 2] = np.asarray(self.row_direction) * column_spacing
        affine[:3, 3] = self.origin_mm
        return affine

    def voxel_to_patient(self, zyx: Sequence[float]) -> tuple[float, float, float]:
        """Patient coordinates (x, y, z) in mm of a (possibly fractional) voxel index (z, y, x)."""
        point = self.voxel_to_patient_matrix() @ np.array([*zyx, 1.0])
        return (float(point[0]), float(point[1]), float(point[2]))


@dataclass(frozen=True)
class VoxelBox:
    """A half-open box of voxel indices [start, stop) in (z, y, x) order."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return (
            slice(self.start[0], self.stop[0]),
            slice(self.start[1], self.stop[1]),
            slice(self.start[2], self.stop[2]),
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        return (
            self.stop[0] - self.start[0],
            self.stop[1] - self.start[1],
            self.stop[2] - self.start[2],
        )


@dataclass(frozen=True, kw_only=True)
class Finding:
    """Something an engine reports at a place in the volume.

    ``mask`` (boolean, shape ``box.shape``) locates it voxel by voxel inside ``box``; a
    classification engine's finding about the whole volume has neither.
    """

    label: str
    score: float | None = None
    centroid_voxel_zyx: tuple[float, float, float] | None = None
    centroid_patient_mm: tuple[float, float, float] | None = None
    volume_mm3: float | None = None
    box: VoxelBox | None = None
    mask: NDArray[np.bool_] | None = field(default=None, repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        """The finding without its mask: what goes into an ``EngineResult.summary``."""
        return {
            "label": self.label,
            "score": self.score,
            "centroid_voxel_zyx": _rounded(self.centroid_voxel_zyx, 2),
            "centroid_patient_mm": _rounded(self.centroid_patient_mm, 2),
            "volume_mm3": None if self.volume_mm3 is None else round(self.volume_mm3, 1),
            "box": None if self.box is None else {"start": list(self.box.start), "stop": list(self.box.stop)},
        }

    def full_mask(self, volume_shape: tuple[int, int, int]) -> NDArray[np.bool_]:
        """The finding's mask pasted into an empty volume of ``volume_shape``."""
        if self.mask is None or self.box is None:
            raise ValueError(f"finding {self.label!r} has no mask")
        full = np.zeros(volume_shape, dtype=bool)
        full[self.box.slices] = self.mask
        return full


@dataclass(frozen=True, kw_only=True)
class Nodule(Finding):
    """A pulmonary nodule with the measurements a radiologist reports.

    ``long_axis_mm`` is the longest diameter in an axial slice, as measured by radiologists
    (Fleischner Society 2017, Lung-RADS); ``maximum_3d_diameter_mm`` is the largest distance
    across the 3D mask in any direction (maximum Feret diameter). ``sphericity`` is the
    diameter of the sphere of equal volume divided by the maximum 3D diameter: 1 for a ball,
    about 0.25 for a vessel segment ten times longer than wide.
    """

    long_axis_mm: float
    short_axis_mm: float
    maximum_3d_diameter_mm: float
    mean_hu: float
    sphericity: float
    elongation: float
    lung_side: str | None = None  # "left" | "right", patient's side
    attachment: str = "isolated"  # "isolated" | "juxta_pleural" | "juxta_vascular"

    def as_json(self) -> dict[str, Any]:
        return {
            **super().as_json(),
            "long_axis_mm": round(self.long_axis_mm, 2),
            "short_axis_mm": round(self.short_axis_mm, 2),
            "maximum_3d_diameter_mm": round(self.maximum_3d_diameter_mm, 2),
            "mean_hu": round(self.mean_hu, 1),
            "sphericity": round(self.sphericity, 3),
            "elongation": round(self.elongation, 3),
            "lung_side": self.lung_side,
            "attachment": self.attachment,
        }


@dataclass(frozen=True)
class EngineResult:
    """What one run of an engine produced.

    ``summary`` is plain JSON (numbers, strings, lists, dicts) for the job record and the
    worklist; ``label_volume`` (same shape as the input, 0 = background, k = ``findings[k-1]``)
    is kept for engines whose output is a labelling rather than a list of objects.
    """

    engine: EngineDescriptor
    findings: tuple[Finding, ...]
    summary: Mapping[str, Any]
    label_volume: NDArray[np.integer[Any]] | None = field(default=None, repr=False)


class InferenceEngine(Protocol):
    """Anything the job runner can call: a descriptor and a pure ``run``."""

    @property
    def descriptor(self) -> EngineDescriptor: ...

    def run(self, volume: VolumeInput) -> EngineResult: ...


def _rounded(values: Sequence[float] | None, digits: int) -> list[float] | None:
    return None if values is None else [round(float(value), digits) for value in values]


# --- building a volume from datasets -------------------------------------------------------------


@dataclass(frozen=True)
class _SliceGeometry:
    row_direction: NDArray[np.float64]
    column_direction: NDArray[np.float64]
    slice_direction: NDArray[np.float64]


def _required(dataset: Dataset, keyword: str) -> Any:
    value = dataset.get(keyword)
    if value is None or value == "":
        uid = dataset.get("SOPInstanceUID", "<no SOPInstanceUID>")
        raise VolumeRefused(f"instance {uid} has no {keyword}; it cannot be placed in a volume")
    return value


def _slice_geometry(dataset: Dataset) -> _SliceGeometry:
    orientation = np.asarray(_required(dataset, "ImageOrientationPatient"), dtype=float)
    if orientation.shape != (6,):
        raise VolumeRefused("ImageOrientationPatient must hold six direction cosines (PS3.3 C.7.6.2.1.1)")
    row_direction, column_direction = orientation[:3], orientation[3:]
    slice_direction = np.cross(row_direction, column_direction)
    norm = np.linalg.norm(slice_direction)
    if norm < 0.5:
        raise VolumeRefused("ImageOrientationPatient row and column directions are not orthogonal")
    return _SliceGeometry(row_direction, column_direction, slice_direction / norm)


def sort_slices_along_normal(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Single-frame slices of one series sorted by position along the slice normal, increasing.

    Instance Number is not used: it is optional and often counts head-to-feet or the reverse.
    The position along the normal is Image Position (Patient) · (row × column direction cosines),
    PS3.3 C.7.6.2.1.1.
    """
    if not datasets:
        raise VolumeRefused("no datasets were given")
    geometry = _slice_geometry(datasets[0])
    positions = [
        float(np.dot(np.asarray(_required(dataset, "ImagePositionPatient"), dtype=float), geometry.slice_direction))
        for dataset in datasets
    ]
    order = np.argsort(positions, kind="stable")
    return [datasets[int(index)] for index in order]


def _check_one_series(datasets: Sequence[Dataset]) -> None:
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality"):
        values = {str(_required(dataset, keyword)) for dataset in datasets}
        if len(values) > 1:
            raise VolumeRefused(
                f"the datasets mix {len(values)} values of {keyword} ({', '.join(sorted(values)[:3])}…): "
                "a volume is built from one series only"
            )
    instance_uids = [str(_required(dataset, "SOPInstanceUID")) for dataset in datasets]
    if len(set(instance_uids)) != len(instance_uids):
        raise VolumeRefused("the same SOPInstanceUID appears more than once")
    for dataset in datasets:
        if int(dataset.get("NumberOfFrames", 1) or 1) != 1:
            raise VolumeRefused("multi-frame instances are not supported here; give single-frame slices")


def _check_equal_geometry(datasets: Sequence[Dataset], reference: _SliceGeometry) -> tuple[int, int, float, float]:
    first = datasets[0]
    rows, columns = int(_required(first, "Rows")), int(_required(first, "Columns"))
    row_spacing, column_spacing = (float(value) for value in _required(first, "PixelSpacing"))
    for dataset in datasets:
        if (int(dataset.Rows), int(dataset.Columns)) != (rows, columns):
            raise VolumeRefused(
                f"slice {dataset.SOPInstanceUID} is {dataset.Rows}×{dataset.Columns}, "
                f"the series' first slice {rows}×{columns}: all slices must have equal size"
            )
        spacing = [float(value) for value in _required(dataset, "PixelSpacing")]
        if not np.allclose(spacing, [row_spacing, column_spacing], atol=GEOMETRY_TOLERANCE):
            raise VolumeRefused(f"slice {dataset.SOPInstanceUID} has Pixel Spacing {spacing}, unlike the others")
        geometry = _slice_geometry(dataset)
        if not (
            np.allclose(geometry.row_direction, reference.row_direction, atol=GEOMETRY_TOLERANCE)
            and np.allclose(geometry.column_direction, reference.column_direction, atol=GEOMETRY_TOLERANCE)
        ):
            raise VolumeRefused(f"slice {dataset.SOPInstanceUID} has a different Image Orientation (Patient)")
    return rows, columns, row_spacing, column_spacing


def _check_slices_stack_along_the_normal(datasets: Sequence[Dataset], geometry: _SliceGeometry) -> None:
    """Successive slice origins must move along the slice normal only.

    A gantry-tilted acquisition shifts each slice in-plane as well; treating it as a stack of
    aligned slices would misplace every voxel, so it is refused rather than silently sheared.
    """
    origins = np.array([np.asarray(dataset.ImagePositionPatient, dtype=float) for dataset in datasets])
    steps = np.diff(origins, axis=0)
    along_normal = steps @ geometry.slice_direction
    sideways = np.linalg.norm(steps - np.outer(along_normal, geometry.slice_direction), axis=1)
    if len(sideways) and float(sideways.max()) > 0.01 + 0.01 * float(np.abs(along_normal).max()):
        raise VolumeRefused(
            f"slice origins shift by up to {sideways.max():.3f} mm within the slice plane (gantry tilt or "
            "a sheared stack): resample the series to an orthogonal grid first"
        )


def _slice_gap(positions: NDArray[np.float64]) -> float:
    if len(positions) == 1:
        return 0.0
    gaps = np.diff(positions)
    if np.any(gaps < GEOMETRY_TOLERANCE):
        raise VolumeRefused("two slices share the same position: duplicates or a second stack in the series")
    median_gap = float(np.median(gaps))
    if np.any(np.abs(gaps - median_gap) > SLICE_GAP_TOLERANCE_FRACTION * median_gap):
        raise VolumeRefused(
            f"slice gaps vary from {gaps.min():.3f} to {gaps.max():.3f} mm: the series is not uniformly spaced "
            "(missing slices or a variable-thickness acquisition)"
        )
    return median_gap


def rescaled_pixels(dataset: Dataset) -> NDArray[np.float32]:
    """Stored values mapped to output units by Rescale Slope/Intercept (PS3.3 C.11.1.1.2): HU for CT."""
    slope = float(dataset.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(dataset.get("RescaleIntercept", 0.0) or 0.0)
    pixels = dataset.pixel_array.astype(np.float32)
    if slope != 1.0:
        pixels *= np.float32(slope)
    if intercept != 0.0:
        pixels += np.float32(intercept)
    return pixels


def volume_from_datasets(datasets: Sequence[Dataset]) -> VolumeInput:
    """Stack the single-frame slices of one series into a ``VolumeInput``.

    Refuses (``VolumeRefused``) datasets from more than one study, series or frame of reference,
    slices of unequal size, spacing or orientation, duplicate positions and uneven slice gaps:
    every measurement in mm downstream depends on a regular grid.
    """
    if not datasets:
        raise VolumeRefused("no datasets were given")
    _check_one_series(datasets)
    ordered = sort_slices_along_normal(datasets)
    geometry = _slice_geometry(ordered[0])
    rows, columns, row_spacing, column_spacing = _check_equal_geometry(ordered, geometry)
    positions = np.array(
        [float(np.dot(np.asarray(dataset.ImagePositionPatient, dtype=float), geometry.slice_direction)) for dataset in ordered]
    )
    slice_gap = _slice_gap(positions)
    _check_slices_stack_along_the_normal(ordered, geometry)
    if slice_gap == 0.0:
        # One slice: the nominal thickness is the only spacing there is.
        slice_gap = float(ordered[0].get("SliceThickness", 1.0) or 1.0)

    voxels = np.empty((len(ordered), rows, columns), dtype=np.float32)
    for index, dataset in enumerate(ordered):
        voxels[index] = rescaled_pixels(dataset)

    first = ordered[0]
    body_part = str(first.get("BodyPartExamined", "") or "").strip() or None
    return VolumeInput(
        voxels=voxels,
        spacing_mm=(slice_gap, row_spacing, column_spacing),
        origin_mm=tuple(float(value) for value in first.ImagePositionPatient),  # type: ignore[arg-type]
        row_direction=tuple(float(value) for value in geometry.row_direction),  # type: ignore[arg-type]
        column_direction=tuple(float(value) for value in geometry.column_direction),  # type: ignore[arg-type]
        slice_direction=tuple(float(value) for value in geometry.slice_direction),  # type: ignore[arg-type]
        modality=str(first.Modality),
        body_part_examined=body_part,
        study_instance_uid=str(first.StudyInstanceUID),
        series_instance_uid=str(first.SeriesInstanceUID),
        frame_of_reference_uid=str(first.FrameOfReferenceUID),
        sop_class_uid=str(first.SOPClassUID),
        sop_instance_uids=tuple(str(dataset.SOPInstanceUID) for dataset in ordered),
    )
