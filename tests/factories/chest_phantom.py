"""A synthetic chest CT with known truth, for testing detectors and their DICOM results.

The phantom is an elliptical body of soft tissue (40 HU) with a fat rim (-100 HU), ribs and a
spine (700 HU), two ellipsoidal lungs (-850 HU), tubular vessels (40 HU) running through the
lungs, and solid nodules (30 HU): spheres and ellipsoids with known centres, sizes and volumes,
one of them touching the lateral lung wall (juxta-pleural). The image is blurred a little (the
scanner's point-spread function: it creates the partial-volume edge real CT has) and white noise
is added, then stored as int16 with Rescale Intercept -1024 in CT Image Storage instances.

Geometry: axial slices, Image Orientation (Patient) [1,0,0, 0,1,0] (LPS: +x patient left, +y
posterior); slice k lies at z = first_slice_z_mm + k·slice gap, so the truth's voxel indices
(z, y, x) are in the order a reader sorting along the slice normal produces.

Positions of lungs, nodules and vessels are given relative to the body and lungs, so the same
spec works for any matrix size and pixel spacing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

AIR_HU = -1000.0
FAT_HU = -100.0
SOFT_TISSUE_HU = 40.0
LUNG_HU = -850.0
VESSEL_HU = 40.0
BONE_HU = 700.0
NODULE_HU = 30.0
RESCALE_INTERCEPT = -1024

LungSide = Literal["left", "right"]


@dataclass(frozen=True)
class NoduleSpec:
    """A solid nodule placed relative to one lung.

    ``relative_center`` is (x, y, z) in units of the lung's semi-axes from the lung's centre
    (so each component lies in (-1, 1) for a point inside it). With ``juxta_pleural`` the
    x component is ignored: the nodule is pushed laterally until it touches the lung wall and
    overlaps it by ``wall_overlap_mm``.
    """

    label: str
    lung: LungSide
    relative_center: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]  # along patient x, y, z
    hu: float = NODULE_HU
    juxta_pleural: bool = False
    wall_overlap_mm: float = 0.5

    @classmethod
    def sphere(cls, label: str, lung: LungSide, relative_center: tuple[float, float, float], diameter_mm: float,
               **options: object) -> NoduleSpec:
        radius = diameter_mm / 2
        return cls(label=label, lung=lung, relative_center=relative_center,
                   semi_axes_mm=(radius, radius, radius), **options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class VesselSpec:
    """A straight tube between two points given relative to one lung (like NoduleSpec), clipped to the lung.

    ``touches`` names the nodules the vessel may run into (juxta-vascular nodules); passing
    near any other nodule is refused, so the truth stays unambiguous.
    """

    lung: LungSide
    relative_start: tuple[float, float, float]
    relative_end: tuple[float, float, float]
    radius_mm: float
    hu: float = VESSEL_HU
    touches: tuple[str, ...] = ()


def default_nodules() -> tuple[NoduleSpec, ...]:
    return (
        NoduleSpec.sphere("solid-8mm", "right", (0.05, -0.35, 0.25), 8.0),
        NoduleSpec.sphere("solid-15mm", "left", (-0.1, 0.3, -0.2), 15.0),
        NoduleSpec.sphere("solid-4mm", "right", (-0.35, 0.45, -0.35), 4.0),
        NoduleSpec(label="ellipsoid-12x8mm", lung="left", relative_center=(0.0, -0.45, 0.35),
                   semi_axes_mm=(6.0, 4.0, 4.5)),
        NoduleSpec.sphere("juxta-pleural-10mm", "right", (0.0, 0.05, -0.05), 10.0, juxta_pleural=True),
    )


def default_vessels() -> tuple[VesselSpec, ...]:
    return (
        # Craniocaudal: a round dot on every axial slice, only 3D shape tells it from a nodule.
        VesselSpec("right", (0.45, -0.05, -0.9), (0.45, -0.05, 0.9), 2.0),
        # Oblique through the left lung.
        VesselSpec("left", (0.5, -0.7, -0.7), (-0.5, 0.1, 0.8), 1.75),
        # In-plane, anteroposterior.
        VesselSpec("right", (-0.2, -0.9, 0.55), (-0.2, 0.9, 0.55), 1.5),
        VesselSpec("left", (0.45, 0.1, -0.9), (0.45, 0.8, 0.2), 2.5),
    )


def juxta_vascular_spec(**options: object) -> ChestPhantomSpec:
    """The default phantom plus a 9 mm nodule threaded on a 2 mm craniocaudal vessel."""
    nodule = NoduleSpec.sphere("juxta-vascular-9mm", "left", (0.4, -0.2, -0.45), 9.0)
    vessel = VesselSpec("left", (0.4, -0.2, -0.95), (0.4, -0.2, 0.1), 1.0, touches=(nodule.label,))
    return ChestPhantomSpec(nodules=(*default_nodules(), nodule), vessels=(*default_vessels(), vessel),
                            **options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChestPhantomSpec:
    rows: int = 256
    columns: int = 256
    slices: int = 80
    pixel_spacing_mm: float = 0.7
    slice_thickness_mm: float = 1.25
    noise_hu: float = 20.0
    blur_sigma_mm: float = 0.4
    seed: int = 0
    first_slice_z_mm: float = -50.0
    nodules: tuple[NoduleSpec, ...] = field(default_factory=default_nodules)
    vessels: tuple[VesselSpec, ...] = field(default_factory=default_vessels)
    patient_id: str = "PHANTOM-001"
    patient_name: str = "Phantom^Chest"


@dataclass(frozen=True)
class Ellipsoid:
    center_mm: tuple[float, float, float]  # patient x, y, z
    semi_axes_mm: tuple[float, float, float]

    def normalised_radius_squared(self, x: NDArray[np.float64], y: NDArray[np.float64], z: float) -> NDArray[np.float64]:
        cx, cy, cz = self.center_mm
        ax, ay, az = self.semi_axes_mm
        return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2  # type: ignore[no-any-return]

    def point(self, relative: tuple[float, float, float]) -> tuple[float, float, float]:
        return (
            self.center_mm[0] + relative[0] * self.semi_axes_mm[0],
            self.center_mm[1] + relative[1] * self.semi_axes_mm[1],
            self.center_mm[2] + relative[2] * self.semi_axes_mm[2],
        )


@dataclass(frozen=True)
class NoduleTruth:
    """What a perfect detector would report for one nodule.

    ``long_axis_mm`` is the longest axial (in-plane) diameter, as radiologists measure it;
    ``volume_mm3`` is the ellipsoid's volume (4/3·π·a·b·c), including the sliver that overlaps
    the lung wall for a juxta-pleural nodule.
    """

    label: str
    lung: LungSide
    center_patient_mm: tuple[float, float, float]
    center_voxel_zyx: tuple[float, float, float]
    semi_axes_mm: tuple[float, float, float]
    long_axis_mm: float
    volume_mm3: float
    hu: float
    juxta_pleural: bool


@dataclass(frozen=True)
class ChestPhantom:
    """The generated phantom: HU voxels, truth, and a way to make the DICOM instances."""

    spec: ChestPhantomSpec
    hu: NDArray[np.float32]  # (z, y, x), Hounsfield units as stored (after quantisation)
    lung_mask: NDArray[np.bool_]  # truth: the two lung ellipsoids, everything inside them
    nodules: tuple[NoduleTruth, ...]
    vessel_mask: NDArray[np.bool_]
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: tuple[str, ...]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return (self.spec.slice_thickness_mm, self.spec.pixel_spacing_mm, self.spec.pixel_spacing_mm)

    @property
    def origin_mm(self) -> tuple[float, float, float]:
        return (_column_to_x(self.spec, 0), _row_to_y(self.spec, 0), self.spec.first_slice_z_mm)

    def datasets(self) -> list[Dataset]:
        """CT Image Storage instances, one per slice, in slice order (z increasing)."""
        return list(self.iter_datasets())

    def iter_datasets(self) -> Iterator[Dataset]:
        for index in range(self.hu.shape[0]):
            yield _ct_slice_dataset(self, index)


def _column_to_x(spec: ChestPhantomSpec, column: float) -> float:
    return (column - (spec.columns - 1) / 2) * spec.pixel_spacing_mm


def _row_to_y(spec: ChestPhantomSpec, row: float) -> float:
    return (row - (spec.rows - 1) / 2) * spec.pixel_spacing_mm


@dataclass(frozen=True)
class _Anatomy:
    body: Ellipsoid  # z semi-axis unused: the body is a cylinder
    lungs: dict[str, Ellipsoid]
    spine_center_mm: tuple[float, float]
    spine_radius_mm: float


def _anatomy(spec: ChestPhantomSpec) -> _Anatomy:
    field_of_view_mm = min(spec.rows, spec.columns) * spec.pixel_spacing_mm
    body_half_width = 0.44 * field_of_view_mm
    body_half_depth = 0.31 * field_of_view_mm
    z_extent = spec.slices * spec.slice_thickness_mm
    z_center = spec.first_slice_z_mm + (spec.slices - 1) * spec.slice_thickness_mm / 2
    body = Ellipsoid((0.0, 0.0, z_center), (body_half_width, body_half_depth, 1e9))
    lung_semi_axes = (0.31 * body_half_width, 0.58 * body_half_depth, 0.42 * z_extent)
    lung_center_x = 0.46 * body_half_width
    lung_center_y = -0.03 * body_half_depth
    # LPS: the patient's right lung is at negative x.
    lungs = {
        "right": Ellipsoid((-lung_center_x, lung_center_y, z_center), lung_semi_axes),
        "left": Ellipsoid((lung_center_x, lung_center_y, z_center), lung_semi_axes),
    }
    return _Anatomy(body=body, lungs=lungs, spine_center_mm=(0.0, 0.78 * body_half_depth),
                    spine_radius_mm=0.13 * body_half_depth)


def _juxta_pleural_center(lung: Ellipsoid, side: LungSide, nodule: NoduleSpec) -> tuple[float, float, float]:
    """Centre of a nodule that touches the lateral wall from inside and overlaps it slightly.

    The wall point lies on the lung ellipsoid at the requested relative y and z; the nodule
    centre sits on the inward normal there, one radius minus the overlap away.
    """
    _, relative_y, relative_z = nodule.relative_center
    relative_x = math.sqrt(max(0.0, 1.0 - relative_y**2 - relative_z**2))
    sign = -1.0 if side == "right" else 1.0  # lateral is away from the midline
    wall_point = lung.point((sign * relative_x, relative_y, relative_z))
    ax, ay, az = lung.semi_axes_mm
    normal = np.array([
        (wall_point[0] - lung.center_mm[0]) / ax**2,
        (wall_point[1] - lung.center_mm[1]) / ay**2,
        (wall_point[2] - lung.center_mm[2]) / az**2,
    ])
    normal /= np.linalg.norm(normal)
    # Distance from the centre to the wall along the normal for an axis-aligned ellipsoid nodule.
    reach = float(np.sqrt(np.sum((np.asarray(nodule.semi_axes_mm) * normal) ** 2)))
    center = np.asarray(wall_point) - normal * (reach - nodule.wall_overlap_mm)
    return (float(center[0]), float(center[1]), float(center[2]))


def _segment_distance(x: NDArray[np.float64], y: NDArray[np.float64], z: float,
                      start: NDArray[np.float64], end: NDArray[np.float64]) -> NDArray[np.float64]:
    direction = end - start
    length_squared = float(direction @ direction)
    t = ((x - start[0]) * direction[0] + (y - start[1]) * direction[1] + (z - start[2]) * direction[2]) / length_squared
    t = np.clip(t, 0.0, 1.0)
    return np.sqrt((x - start[0] - t * direction[0]) ** 2 + (y - start[1] - t * direction[1]) ** 2
                   + (z - start[2] - t * direction[2]) ** 2)  # type: ignore[no-any-return]


def generate_chest_phantom(spec: ChestPhantomSpec | None = None) -> ChestPhantom:
    """Render the phantom slice by slice (memory stays flat for 512×512×300)."""
    spec = spec or ChestPhantomSpec()
    anatomy = _anatomy(spec)
    rng = np.random.default_rng(spec.seed)

    nodule_shapes: list[tuple[NoduleSpec, Ellipsoid]] = []
    truths: list[NoduleTruth] = []
    for nodule in spec.nodules:
        lung = anatomy.lungs[nodule.lung]
        center = _juxta_pleural_center(lung, nodule.lung, nodule) if nodule.juxta_pleural else lung.point(nodule.relative_center)
        shape = Ellipsoid(center, nodule.semi_axes_mm)
        nodule_shapes.append((nodule, shape))
        ax, ay, az = nodule.semi_axes_mm
        truths.append(NoduleTruth(
            label=nodule.label,
            lung=nodule.lung,
            center_patient_mm=center,
            center_voxel_zyx=(
                (center[2] - spec.first_slice_z_mm) / spec.slice_thickness_mm,
                center[1] / spec.pixel_spacing_mm + (spec.rows - 1) / 2,
                center[0] / spec.pixel_spacing_mm + (spec.columns - 1) / 2,
            ),
            semi_axes_mm=nodule.semi_axes_mm,
            long_axis_mm=2 * max(ax, ay),
            volume_mm3=4 / 3 * math.pi * ax * ay * az,
            hu=nodule.hu,
            juxta_pleural=nodule.juxta_pleural,
        ))

    vessel_segments = []
    for vessel in spec.vessels:
        lung = anatomy.lungs[vessel.lung]
        vessel_segments.append((vessel, np.asarray(lung.point(vessel.relative_start)), np.asarray(lung.point(vessel.relative_end))))
    _check_vessels_clear_of_nodules(vessel_segments, truths)

    columns_mm = _column_to_x(spec, np.arange(spec.columns, dtype=np.float64))  # type: ignore[arg-type]
    rows_mm = _row_to_y(spec, np.arange(spec.rows, dtype=np.float64))  # type: ignore[arg-type]
    x, y = np.meshgrid(columns_mm, rows_mm)
    body_radius_squared = anatomy.body.normalised_radius_squared(x, y, anatomy.body.center_mm[2])
    angle = np.arctan2(y, x)
    blur_sigma_pixels = spec.blur_sigma_mm / spec.pixel_spacing_mm

    hu = np.empty((spec.slices, spec.rows, spec.columns), dtype=np.float32)
    lung_mask = np.zeros(hu.shape, dtype=bool)
    vessel_mask = np.zeros(hu.shape, dtype=bool)
    for index in range(spec.slices):
        z = spec.first_slice_z_mm + index * spec.slice_thickness_mm
        image = np.full((spec.rows, spec.columns), AIR_HU)
        inside_body = body_radius_squared <= 1.0
        image[inside_body] = FAT_HU
        image[body_radius_squared <= 0.86] = SOFT_TISSUE_HU
        # Ribs: bony arcs in the chest wall, present in slabs (a rib crosses a slice at an angle).
        if (z // 9.0) % 2 == 0:
            in_rib_ring = (body_radius_squared > 0.74) & (body_radius_squared < 0.81)
            rib_angles = (np.abs(np.sin(angle)) > 0.35)
            image[in_rib_ring & rib_angles] = BONE_HU
        spine_x, spine_y = anatomy.spine_center_mm
        image[(x - spine_x) ** 2 + (y - spine_y) ** 2 <= anatomy.spine_radius_mm**2] = BONE_HU

        in_lungs = np.zeros_like(inside_body)
        for lung in anatomy.lungs.values():
            in_lungs |= lung.normalised_radius_squared(x, y, z) <= 1.0
        image[in_lungs] = LUNG_HU
        lung_mask[index] = in_lungs

        for vessel, start, end in vessel_segments:
            in_vessel = (_segment_distance(x, y, z, start, end) <= vessel.radius_mm) & in_lungs
            image[in_vessel] = vessel.hu
            vessel_mask[index] |= in_vessel
        for nodule, shape in nodule_shapes:
            image[shape.normalised_radius_squared(x, y, z) <= 1.0] = nodule.hu

        if blur_sigma_pixels > 0:
            image = ndimage.gaussian_filter(image, blur_sigma_pixels, mode="nearest")
        if spec.noise_hu > 0:
            image += rng.normal(0.0, spec.noise_hu, size=image.shape)
        hu[index] = np.clip(np.round(image), -1024, 3071)

    uids = (generate_uid(), generate_uid(), generate_uid())
    return ChestPhantom(
        spec=spec,
        hu=hu,
        lung_mask=lung_mask,
        nodules=tuple(truths),
        vessel_mask=vessel_mask,
        study_instance_uid=uids[0],
        series_instance_uid=uids[1],
        frame_of_reference_uid=uids[2],
        sop_instance_uids=tuple(generate_uid() for _ in range(spec.slices)),
    )


def _check_vessels_clear_of_nodules(vessel_segments: list[tuple[VesselSpec, NDArray[np.float64], NDArray[np.float64]]],
                                    truths: list[NoduleTruth]) -> None:
    """Vessels must not touch nodules unless meant to: the truth would be ambiguous otherwise."""
    for vessel, start, end in vessel_segments:
        for truth in truths:
            if truth.label in vessel.touches:
                continue
            center = np.asarray(truth.center_patient_mm)
            distance = float(_segment_distance(np.array(center[0]), np.array(center[1]), float(center[2]), start, end))
            clearance = distance - vessel.radius_mm - max(truth.semi_axes_mm)
            if clearance < 2.0:
                raise ValueError(f"vessel {vessel} passes within {clearance:.1f} mm of nodule {truth.label}")


def _ct_slice_dataset(phantom: ChestPhantom, index: int) -> Dataset:
    """One CT Image Storage instance (PS3.3 A.3) with the Image Plane and Pixel modules filled."""
    spec = phantom.spec
    sop_instance_uid = phantom.sop_instance_uids[index]

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = CTImageStorage
    file_meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    dataset = Dataset()
    dataset.file_meta = file_meta
    dataset.SOPClassUID = CTImageStorage
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.StudyInstanceUID = phantom.study_instance_uid
    dataset.SeriesInstanceUID = phantom.series_instance_uid
    dataset.FrameOfReferenceUID = phantom.frame_of_reference_uid
    dataset.PositionReferenceIndicator = ""
    dataset.PatientID = spec.patient_id
    dataset.PatientName = spec.patient_name
    dataset.PatientBirthDate = "19600101"
    dataset.PatientSex = "O"
    dataset.StudyDate = "20260101"
    dataset.StudyTime = "120000"
    dataset.StudyID = "1"
    dataset.AccessionNumber = "PHANTOM1"
    dataset.ReferringPhysicianName = ""
    dataset.Modality = "CT"
    dataset.BodyPartExamined = "CHEST"
    dataset.SeriesNumber = 2
    dataset.SeriesDescription = "Chest phantom 1.25mm"
    dataset.InstanceNumber = index + 1
    dataset.Manufacturer = "Imaging Cloud test phantom"
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    dataset.KVP = "120"
    dataset.AcquisitionNumber = 1
    dataset.PatientPosition = "FFS"

    z = spec.first_slice_z_mm + index * spec.slice_thickness_mm
    dataset.ImagePositionPatient = [_column_to_x(spec, 0), _row_to_y(spec, 0), z]
    dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    dataset.PixelSpacing = [spec.pixel_spacing_mm, spec.pixel_spacing_mm]
    dataset.SliceThickness = spec.slice_thickness_mm
    dataset.SliceLocation = z

    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows = spec.rows
    dataset.Columns = spec.columns
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 1
    dataset.RescaleIntercept = RESCALE_INTERCEPT
    dataset.RescaleSlope = 1
    dataset.RescaleType = "HU"
    dataset.WindowCenter = -600
    dataset.WindowWidth = 1500
    stored = (phantom.hu[index] - RESCALE_INTERCEPT).astype(np.int16)
    dataset.add_new(0x7FE00010, "OW", stored.tobytes())  # Pixel Data; OW for 16-bit samples (PS3.5 8.1.2)
    return dataset
