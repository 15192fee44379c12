"""A classical (no learned weights) solid pulmonary nodule detector for chest CT, on the CPU.

One module over 500 lines on purpose: it is one engine, whose steps and their tuned thresholds are
read and changed together.

Pipeline, each step chosen so that a 512×512×300 volume takes 5–7 s on one core:

1. Lung mask, on a grid coarsened to about 1.4 mm in-plane and 1.5 mm between slices by
   ``block maximum`` (a coarse voxel is air only if all its fine voxels are, so the mask never
   spills into the wall): air (HU < -400) not connected to the in-plane image border is inside
   the body; its largest component, and the second largest when it is at least 15 % of the
   first (a second lung, not bowel gas), are the lungs. Each lung is closed morphologically
   with a 10 mm ball (exact Euclidean, through two distance transforms) so that vessels and
   nodules inside it, and nodules sitting on the pleura (juxta-pleural), become part of it;
   enclosed cavities are filled. Back at full resolution the fine air voxels of the coarse
   edge are added back.
2. Candidates: voxels denser than -400 HU inside the lung mask, connected in 3D (26-connectivity).
3. Each candidate is measured on its 3D mask (``measure_region``) and kept when its axial long axis
   is 3–30 mm (Fleischner 2017: nodules are ≤ 30 mm; larger is a mass), it is compact
   (``sphericity`` ≥ 0.55) and not elongated (``elongation`` ≤ 2.5): this rejects vessels,
   which are tubes, even those running craniocaudally that look round on every axial slice.
4. A candidate that fails the shape test may be a nodule touching a vessel. It is opened
   morphologically with balls of 1.5 and 2.5 mm radius (again by distance transforms): vessels
   thinner than the ball vanish, a nodule clearly thicker survives and is measured on its own
   (``attachment="juxta_vascular"``).
5. A nodule touching the lung mask's edge (``attachment="juxta_pleural"``) is grown to the pleura
   at full resolution, because the coarse mask stops up to a coarse voxel short of it.

Measurements (``Nodule``): centroid (voxel and patient mm); long axis = the longest diameter in an
axial slice, which is how radiologists measure (Fleischner 2017, Lung-RADS), with the
perpendicular short axis; also the maximum 3D (Feret) diameter in any direction; volume = voxel
count × voxel volume; mean HU over the inner half of the mask's depth (the outer voxels are
averaged with the surrounding lung by the partial-volume effect). Results are deterministic.

Scope: solid and part-solid nodules (a solid component above -400 HU). Pure ground-glass nodules
(-800 to -400 HU) and nodules touching the mediastinum over a large surface are out of scope;
on real scans, vessel bifurcations and hilar structures will give false positives that a
learned false-positive-reduction stage (through ``OnnxEngine``) would remove.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist, squareform

from apps.ai.engines.base import (
    EngineDescriptor,
    EngineResult,
    Finding,
    Nodule,
    OutputKind,
    VolumeInput,
    VoxelBox,
)

ENGINE_NAME = "imaging-cloud-pulmonary-nodule"
ENGINE_VERSION = "1.0.0"
ENGINE_VENDOR = "Imaging Cloud"

FULL_CONNECTIVITY_3D = np.ones((3, 3, 3), dtype=bool)
FACE_CONNECTIVITY_3D = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class NoduleDetectorSettings:
    """Thresholds of the detector; the defaults are tuned for adult chest CT at 0.5–1 mm pixels."""

    lung_air_upper_hu: float = -400.0
    nodule_density_lower_hu: float = -400.0
    lung_mask_in_plane_spacing_mm: float = 1.4
    lung_mask_slice_spacing_mm: float = 1.5
    minimum_lung_volume_ml: float = 30.0
    # The second-largest air component is a lung only if comparable to the first (not bowel gas).
    second_lung_minimum_fraction: float = 0.15
    pleural_closing_radius_mm: float = 10.0
    minimum_long_axis_mm: float = 3.0
    maximum_long_axis_mm: float = 30.0
    minimum_sphericity: float = 0.55
    maximum_elongation: float = 2.5
    vessel_detachment_radii_mm: tuple[float, ...] = (1.5, 2.5)


@dataclass(frozen=True)
class LungSegmentation:
    """Lung mask at full resolution, plus the body's midline for left/right."""

    mask: NDArray[np.bool_]
    component_volumes_ml: tuple[float, ...]
    midline_patient_x_mm: float | None
    # The mask was made on this coarser grid; its edge may sit up to one coarse voxel inside the pleura.
    coarse_spacing_mm: tuple[float, float, float]


@dataclass(frozen=True)
class RegionMeasurements:
    """Shape and density of one 3D region (see ``measure_region``)."""

    voxel_count: int
    volume_mm3: float
    centroid_voxel_zyx: tuple[float, float, float]
    long_axis_mm: float
    short_axis_mm: float
    maximum_3d_diameter_mm: float
    sphericity: float
    elongation: float
    mean_hu: float


@dataclass
class _RunStatistics:
    candidates: int = 0
    rejected_by_size: int = 0
    rejected_by_shape: int = 0
    detached_from_vessels: int = 0
    timings_seconds: dict[str, float] = field(default_factory=dict)


class PulmonaryNoduleDetector:
    """Finds solid pulmonary nodules in a chest CT ``VolumeInput`` (see the module docstring)."""

    def __init__(self, settings: NoduleDetectorSettings | None = None) -> None:
        self.settings = settings or NoduleDetectorSettings()

    @property
    def descriptor(self) -> EngineDescriptor:
        return EngineDescriptor(
            name=ENGINE_NAME,
            version=ENGINE_VERSION,
            vendor=ENGINE_VENDOR,
            description="Classical solid pulmonary nodule detection and measurement (3–30 mm) on chest CT",
            modalities=("CT",),
            # PS3.16 Annex L defined terms that include the lungs; some vendors write THORAX.
            body_parts=("CHEST", "LUNG", "CHESTABDOMEN", "CHESTABDPELVIS", "WHOLEBODY", "THORAX"),
            minimum_slices=20,
            outputs=(OutputKind.SEGMENTATION, OutputKind.STRUCTURED_REPORT, OutputKind.JSON),
        )

    def run(self, volume: VolumeInput) -> EngineResult:
        self.descriptor.check_accepts(volume)
        statistics = _RunStatistics()
        started = time.perf_counter()
        lungs = segment_lungs(volume, self.settings)
        statistics.timings_seconds["lung_mask"] = time.perf_counter() - started

        started_candidates = time.perf_counter()
        nodules = self._detect_in_lungs(volume, lungs, statistics)
        statistics.timings_seconds["candidates"] = time.perf_counter() - started_candidates
        statistics.timings_seconds["total"] = time.perf_counter() - started

        label_volume = np.zeros(volume.shape, dtype=np.uint16)
        for number, nodule in enumerate(nodules, start=1):
            assert nodule.box is not None and nodule.mask is not None
            label_volume[nodule.box.slices][nodule.mask] = number
        summary: dict[str, Any] = {
            "engine": self.descriptor.as_json(),
            "nodule_count": len(nodules),
            "largest_long_axis_mm": max((round(n.long_axis_mm, 2) for n in nodules), default=None),
            "nodules": [nodule.as_json() for nodule in nodules],
            "lungs": {
                "found": len(lungs.component_volumes_ml),
                "volumes_ml": [round(v, 1) for v in lungs.component_volumes_ml],
            },
            "candidates": {
                "examined": statistics.candidates,
                "rejected_by_size": statistics.rejected_by_size,
                "rejected_by_shape": statistics.rejected_by_shape,
                "detached_from_vessels": statistics.detached_from_vessels,
            },
            "timings_seconds": {name: round(value, 3) for name, value in statistics.timings_seconds.items()},
        }
        findings: tuple[Finding, ...] = tuple(nodules)
        return EngineResult(engine=self.descriptor, findings=findings, summary=summary, label_volume=label_volume)

    # --- candidates -----------------------------------------------------------------------------

    def _detect_in_lungs(self, volume: VolumeInput, lungs: LungSegmentation,
                         statistics: _RunStatistics) -> list[Nodule]:
        if not lungs.mask.any():
            return []
        lung_box = _bounding_box(lungs.mask)
        lung_mask = lungs.mask[lung_box.slices]
        voxels = volume.voxels[lung_box.slices]
        dense = (voxels > self.settings.nodule_density_lower_hu) & lung_mask
        labels, _ = ndimage.label(dense, structure=FULL_CONNECTIVITY_3D)
        sizes = np.bincount(labels.ravel())
        minimum_voxels = self._minimum_voxel_count(volume)

        accepted: list[tuple[VoxelBox, NDArray[np.bool_], RegionMeasurements, str]] = []
        for label_index, region_slices in enumerate(ndimage.find_objects(labels), start=1):
            if region_slices is None:
                continue
            statistics.candidates += 1
            if sizes[label_index] < minimum_voxels:
                statistics.rejected_by_size += 1
                continue
            box = _box_from_slices(region_slices, offset=lung_box.start)
            region = labels[region_slices] == label_index
            measurements = measure_region(region, volume.voxels[box.slices], volume.spacing_mm, box_start=box.start)
            verdict = self._verdict(measurements)
            if verdict == "nodule":
                accepted.append((box, region, measurements, "isolated"))
                continue
            # Too small stays too small; too long or too big may be a nodule on a vessel.
            detached = [] if measurements.long_axis_mm < self.settings.minimum_long_axis_mm else (
                self._detach_from_vessels(region, box, volume)
            )
            if detached:
                statistics.detached_from_vessels += len(detached)
                accepted.extend(detached)
            elif verdict == "size":
                statistics.rejected_by_size += 1
            else:
                statistics.rejected_by_shape += 1

        nodules = [
            self._nodule(volume, lungs, box, region, measurements, attachment)
            for box, region, measurements, attachment in accepted
        ]
        # Largest first, then by position: a stable order makes segment numbers reproducible.
        nodules.sort(key=lambda nodule: (-nodule.long_axis_mm, nodule.centroid_voxel_zyx or (0.0, 0.0, 0.0)))
        return [_relabelled(nodule, f"Nodule {number}") for number, nodule in enumerate(nodules, start=1)]

    def _minimum_voxel_count(self, volume: VolumeInput) -> int:
        # Half the volume of the smallest reportable sphere: small nodules lose more to the threshold.
        smallest_volume = math.pi / 6 * self.settings.minimum_long_axis_mm**3 / 2
        return max(4, int(smallest_volume / volume.voxel_volume_mm3))

    def _verdict(self, measurements: RegionMeasurements) -> str:
        """``nodule``, ``size`` (outside 3–30 mm) or ``shape`` (too elongated or not compact)."""
        settings = self.settings
        if measurements.long_axis_mm < settings.minimum_long_axis_mm:
            return "size"
        if (measurements.sphericity < settings.minimum_sphericity
                or measurements.elongation > settings.maximum_elongation):
            return "shape"
        if measurements.long_axis_mm > settings.maximum_long_axis_mm:
            return "size"
        return "nodule"

    def _detach_from_vessels(self, region: NDArray[np.bool_], box: VoxelBox,
                             volume: VolumeInput) -> list[tuple[VoxelBox, NDArray[np.bool_], RegionMeasurements, str]]:
        """Nodules found in ``region`` once thin tubes (vessels) are removed by opening with a ball.

        Opening = erosion then dilation with the same ball; with Euclidean distance transforms:
        the core is the set of voxels farther than R from the background, and the opened region
        is the set of region voxels within R of the core.
        """
        spacing = volume.spacing_mm
        padded = np.pad(region, 1)
        depth = ndimage.distance_transform_edt(padded, sampling=spacing)
        found: list[tuple[VoxelBox, NDArray[np.bool_], RegionMeasurements, str]] = []
        taken = np.zeros_like(padded)
        minimum_margin_mm = max(1.0, max(spacing))
        for radius in self.settings.vessel_detachment_radii_mm:
            cores, core_count = ndimage.label(depth > radius, structure=FULL_CONNECTIVITY_3D)
            if core_count == 0:
                continue
            for core_index, core_slices in enumerate(ndimage.find_objects(cores), start=1):
                if core_slices is None:
                    continue
                margin = [int(math.ceil(radius / step)) + 1 for step in spacing]
                local = tuple(
                    slice(max(0, s.start - m), min(n, s.stop + m))
                    for s, m, n in zip(core_slices, margin, padded.shape, strict=True)
                )
                core = cores[local] == core_index
                # A vessel barely thicker than the ball leaves a beaded core whose beads look like
                # small balls; a nodule is clearly thicker than the ball at its centre.
                if float(depth[local][core].max()) < radius + minimum_margin_mm:
                    continue
                opened = (ndimage.distance_transform_edt(~core, sampling=spacing) <= radius) & padded[local]
                if not opened.any() or (opened & taken[local]).any():
                    continue
                opened_box = _bounding_box(opened)
                opened = opened[opened_box.slices]
                start = tuple(
                    box.start[axis] + local[axis].start + opened_box.start[axis] - 1 for axis in range(3)
                )
                nodule_box = VoxelBox(start=start, stop=tuple(s + n for s, n in zip(start, opened.shape, strict=True)))  # type: ignore[arg-type]
                measurements = measure_region(opened, volume.voxels[nodule_box.slices], spacing,
                                              box_start=nodule_box.start)
                if self._verdict(measurements) != "nodule":
                    continue
                taken[local][opened_box.slices] |= opened
                found.append((nodule_box, opened, measurements, "juxta_vascular"))
        return found

    def _nodule(self, volume: VolumeInput, lungs: LungSegmentation, box: VoxelBox, region: NDArray[np.bool_],
                measurements: RegionMeasurements, attachment: str) -> Nodule:
        if attachment == "isolated" and _touches_lung_boundary(region, box, lungs.mask, volume.spacing_mm):
            attachment = "juxta_pleural"
            box, region, measurements = self._extend_to_pleura(volume, lungs, box, region, measurements)
        centroid_patient = volume.voxel_to_patient(measurements.centroid_voxel_zyx)
        lung_side = None
        if lungs.midline_patient_x_mm is not None:
            # LPS: +x points to the patient's left (PS3.3 C.7.6.2.1.1).
            lung_side = "left" if centroid_patient[0] > lungs.midline_patient_x_mm else "right"
        return Nodule(
            label="Nodule",
            score=None,
            centroid_voxel_zyx=measurements.centroid_voxel_zyx,
            centroid_patient_mm=centroid_patient,
            volume_mm3=measurements.volume_mm3,
            box=box,
            mask=region,
            long_axis_mm=measurements.long_axis_mm,
            short_axis_mm=measurements.short_axis_mm,
            maximum_3d_diameter_mm=measurements.maximum_3d_diameter_mm,
            mean_hu=measurements.mean_hu,
            sphericity=measurements.sphericity,
            elongation=measurements.elongation,
            lung_side=lung_side,
            attachment=attachment,
        )


    def _extend_to_pleura(self, volume: VolumeInput, lungs: LungSegmentation, box: VoxelBox,
                          region: NDArray[np.bool_], measurements: RegionMeasurements,
                          ) -> tuple[VoxelBox, NDArray[np.bool_], RegionMeasurements]:
        """Grow a juxta-pleural nodule up to the pleura at full resolution.

        The lung mask comes from a coarse grid and stops up to a coarse voxel short of the pleura,
        cutting a slice off a nodule that sits on it. Around the nodule only, the lung air is
        closed again at full resolution with a ball a little larger than the nodule, and the
        nodule takes the dense voxels of that closing which lie within a coarse voxel of it (so
        it cannot creep along the chest wall).
        """
        spacing = np.asarray(volume.spacing_mm)
        closing_radius = measurements.long_axis_mm / 2 + 1.0
        growth_limit = float(max(lungs.coarse_spacing_mm) + spacing.max())
        margin = np.ceil((closing_radius + 2.0) / spacing).astype(int)
        start = np.maximum(0, np.asarray(box.start) - margin)
        stop = np.minimum(volume.shape, np.asarray(box.stop) + margin)
        window = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
        hu = volume.voxels[window]
        placed = np.zeros(hu.shape, dtype=bool)
        offset = np.asarray(box.start) - start
        placed[tuple(slice(int(o), int(o) + n) for o, n in zip(offset, region.shape, strict=True))] = region

        air = hu < self.settings.lung_air_upper_hu
        dilated = ndimage.distance_transform_edt(~air, sampling=volume.spacing_mm) <= closing_radius
        closed = ndimage.distance_transform_edt(dilated, sampling=volume.spacing_mm) > closing_radius
        near = ndimage.distance_transform_edt(~placed, sampling=volume.spacing_mm) <= growth_limit
        grown = placed | ((hu > self.settings.nodule_density_lower_hu) & closed & near)
        labels, _ = ndimage.label(grown, structure=FULL_CONNECTIVITY_3D)
        grown = np.isin(labels, np.unique(labels[placed]))

        grown_box = _bounding_box(grown)
        new_start = tuple(int(a) + b for a, b in zip(start, grown_box.start, strict=True))
        new_box = VoxelBox(start=new_start, stop=tuple(a + n for a, n in zip(new_start, grown_box.shape, strict=True)))  # type: ignore[arg-type]
        new_region = grown[grown_box.slices]
        new_measurements = measure_region(new_region, volume.voxels[new_box.slices], volume.spacing_mm,
                                          box_start=new_box.start)
        if self._verdict(new_measurements) != "nodule":
            return box, region, measurements
        return new_box, new_region, new_measurements


def _relabelled(nodule: Nodule, label: str) -> Nodule:
    return replace(nodule, label=label)


def _touches_lung_boundary(region: NDArray[np.bool_], box: VoxelBox, lung_mask: NDArray[np.bool_],
                           spacing_mm: tuple[float, float, float]) -> bool:
    """True when a voxel outside the lung mask (pleura, diaphragm, mediastinum) lies within
    1.5 mm, or one voxel if coarser, of the region."""
    reach_mm = max(1.5, *spacing_mm)
    margin = [int(math.ceil(reach_mm / step)) for step in spacing_mm]
    start = [max(0, s - m) for s, m in zip(box.start, margin, strict=True)]
    stop = [min(n, s + m) for s, m, n in zip(box.stop, margin, lung_mask.shape, strict=True)]
    window = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
    placed = np.zeros(tuple(b - a for a, b in zip(start, stop, strict=True)), dtype=bool)
    inner = tuple(slice(s - a, s - a + n) for s, a, n in zip(box.start, start, region.shape, strict=True))
    placed[inner] = region
    near = ndimage.distance_transform_edt(~placed, sampling=spacing_mm) <= reach_mm
    return bool((near & ~lung_mask[window]).any())


# --- lung mask ----------------------------------------------------------------------------------


def segment_lungs(volume: VolumeInput, settings: NoduleDetectorSettings | None = None) -> LungSegmentation:
    """The lungs, including what lies inside them (vessels, nodules, juxta-pleural nodules)."""
    settings = settings or NoduleDetectorSettings()
    factors = (
        max(1, int(round(settings.lung_mask_slice_spacing_mm / volume.spacing_mm[0]))),
        max(1, int(round(settings.lung_mask_in_plane_spacing_mm / volume.spacing_mm[1]))),
        max(1, int(round(settings.lung_mask_in_plane_spacing_mm / volume.spacing_mm[2]))),
    )
    coarse = _block_maximum(volume.voxels, factors)
    coarse_spacing = tuple(s * f for s, f in zip(volume.spacing_mm, factors, strict=True))

    air = coarse < settings.lung_air_upper_hu
    air_labels, _ = ndimage.label(air, structure=FACE_CONNECTIVITY_3D)
    # Air reaching the in-plane border is outside the body (room air, the table's gap).
    border_labels = np.unique(np.concatenate([
        air_labels[:, 0, :].ravel(), air_labels[:, -1, :].ravel(),
        air_labels[:, :, 0].ravel(), air_labels[:, :, -1].ravel(),
    ]))
    outside = np.isin(air_labels, border_labels[border_labels > 0])
    inside_air_labels = np.where(outside, 0, air_labels)
    sizes = np.bincount(inside_air_labels.ravel())
    sizes[0] = 0
    coarse_voxel_ml = float(np.prod(coarse_spacing)) / 1000.0
    ranked = [int(label) for label in np.argsort(sizes)[::-1][:2] if sizes[label] * coarse_voxel_ml >= settings.minimum_lung_volume_ml]
    if len(ranked) == 2 and sizes[ranked[1]] < settings.second_lung_minimum_fraction * sizes[ranked[0]]:
        ranked = ranked[:1]

    coarse_lungs = np.zeros(coarse.shape, dtype=bool)
    for label in ranked:
        component = inside_air_labels == label
        component_box = _bounding_box(component)
        closed, closed_box = _close_and_fill(component[component_box.slices], component_box, coarse.shape,
                                             settings.pleural_closing_radius_mm, coarse_spacing)
        coarse_lungs[closed_box.slices] |= closed

    mask = _upsample(coarse_lungs, factors, volume.shape)
    if factors != (1, 1, 1) and coarse_lungs.any():
        # The coarse edge stops short of the pleura; give back the fine air voxels of that rim.
        rim = _upsample(ndimage.binary_dilation(coarse_lungs, structure=FACE_CONNECTIVITY_3D), factors, volume.shape)
        mask |= rim & (volume.voxels < settings.lung_air_upper_hu)
    body = ~outside
    midline = None
    if body.any():
        body_center_coarse = ndimage.center_of_mass(body)
        body_center = [(c + 0.5) * f - 0.5 for c, f in zip(body_center_coarse, factors, strict=True)]
        midline = volume.voxel_to_patient(body_center)[0]
    return LungSegmentation(
        mask=mask,
        component_volumes_ml=tuple(float(sizes[label]) * coarse_voxel_ml for label in ranked),
        midline_patient_x_mm=midline,
        coarse_spacing_mm=coarse_spacing,  # type: ignore[arg-type]
    )


def _close_and_fill(component: NDArray[np.bool_], box: VoxelBox, full_shape: tuple[int, ...], radius_mm: float,
                    spacing: tuple[float, ...]) -> tuple[NDArray[np.bool_], VoxelBox]:
    """Morphological closing with a Euclidean ball of ``radius_mm``, then 3D hole filling.

    Closing = dilation then erosion; dilation is "within R of the set", erosion "farther than R
    from its complement". The box is padded by R so the dilation has room.
    """
    margin = [int(math.ceil(radius_mm / step)) + 1 for step in spacing]
    padded = np.pad(component, [(m, m) for m in margin])
    dilated = ndimage.distance_transform_edt(~padded, sampling=spacing) <= radius_mm
    closed = ndimage.distance_transform_edt(dilated, sampling=spacing) > radius_mm
    closed |= padded
    # Enclosed cavities (e.g. a nodule larger than the ball, deep in the lung) are lung too.
    outside_labels, _ = ndimage.label(~closed, structure=FACE_CONNECTIVITY_3D)
    outer = np.unique(np.concatenate([
        outside_labels[0].ravel(), outside_labels[-1].ravel(),
        outside_labels[:, 0].ravel(), outside_labels[:, -1].ravel(),
        outside_labels[:, :, 0].ravel(), outside_labels[:, :, -1].ravel(),
    ]))
    closed |= ~np.isin(outside_labels, outer)
    # Cut back to the full volume: the padding may stick out of it.
    start = [s - m for s, m in zip(box.start, margin, strict=True)]
    clip_start = [max(0, s) for s in start]
    clip_stop = [min(n, s + p) for s, p, n in zip(start, padded.shape, full_shape, strict=True)]
    local = tuple(slice(a - s, b - s) for a, b, s in zip(clip_start, clip_stop, start, strict=True))
    return closed[local], VoxelBox(tuple(clip_start), tuple(clip_stop))  # type: ignore[arg-type]


def _block_maximum(voxels: NDArray[np.float32], factors: tuple[int, int, int]) -> NDArray[np.float32]:
    if factors == (1, 1, 1):
        return voxels
    padding = [(0, (-n) % f) for n, f in zip(voxels.shape, factors, strict=True)]
    padded = np.pad(voxels, padding, mode="edge") if any(p for _, p in padding) else voxels
    z, y, x = padded.shape
    fz, fy, fx = factors
    blocks = padded.reshape(z // fz, fz, y // fy, fy, x // fx, fx)
    return blocks.max(axis=(1, 3, 5))  # type: ignore[no-any-return]


def _upsample(mask: NDArray[np.bool_], factors: tuple[int, int, int], shape: tuple[int, int, int]) -> NDArray[np.bool_]:
    for axis, factor in enumerate(factors):
        if factor > 1:
            mask = np.repeat(mask, factor, axis=axis)
    return mask[: shape[0], : shape[1], : shape[2]]


# --- measurements -------------------------------------------------------------------------------


def measure_region(region: NDArray[np.bool_], hu: NDArray[np.float32], spacing_mm: tuple[float, float, float],
                   box_start: tuple[int, int, int] = (0, 0, 0)) -> RegionMeasurements:
    """Size, shape and density of a 3D region; ``hu`` is the voxel box the region's mask covers,
    which starts at voxel ``box_start`` of the volume (the centroid is given in volume indices).

    Diameters are between the centres of the two farthest voxels plus half a voxel's extent along
    that direction: the mask's edge voxels straddle the object's edge (threshold at half height),
    so the true edge lies on average half a voxel beyond the outermost centres, less the upward
    bias of taking the maximum over many voxel pairs. ``sphericity`` is the diameter of the
    sphere of equal volume over the maximum 3D diameter; ``elongation`` is the square root of
    the ratio of the largest to smallest principal moment (1 for a ball).
    """
    spacing = np.asarray(spacing_mm, dtype=float)
    coordinates = np.argwhere(region)
    voxel_count = len(coordinates)
    volume = voxel_count * float(np.prod(spacing))
    centroid = coordinates.mean(axis=0) + np.asarray(box_start, dtype=float)

    points_mm = coordinates * spacing
    covariance = np.cov(points_mm.T) if voxel_count > 1 else np.zeros((3, 3))
    covariance = covariance + np.diag(spacing**2 / 12.0)  # each voxel is a box, not a point
    eigenvalues = np.linalg.eigvalsh(covariance)
    elongation = float(math.sqrt(eigenvalues[-1] / max(eigenvalues[0], 1e-9)))

    surface = region & ~ndimage.binary_erosion(region, structure=FACE_CONNECTIVITY_3D)
    maximum_3d_diameter = _maximum_diameter(np.argwhere(surface) * spacing, spacing)
    long_axis, short_axis = _axial_long_and_short_axes(region, spacing)
    equivalent_diameter = (6.0 * volume / math.pi) ** (1.0 / 3.0)
    sphericity = min(1.0, equivalent_diameter / maximum_3d_diameter) if maximum_3d_diameter > 0 else 0.0

    return RegionMeasurements(
        voxel_count=voxel_count,
        volume_mm3=volume,
        centroid_voxel_zyx=(float(centroid[0]), float(centroid[1]), float(centroid[2])),
        long_axis_mm=long_axis,
        short_axis_mm=short_axis,
        maximum_3d_diameter_mm=maximum_3d_diameter,
        sphericity=sphericity,
        elongation=elongation,
        mean_hu=_interior_mean(region, hu, spacing),
    )


def _interior_mean(region: NDArray[np.bool_], hu: NDArray[np.float32], spacing: NDArray[np.float64]) -> float:
    """Mean HU over the inner half of the region (depth from its edge more than half the deepest depth).

    The outer voxels mix the nodule with the surrounding lung (partial volume, in-plane and
    across thick slices), which would pull a small nodule's mean far below its true density;
    a radiologist likewise places the density ROI in the centre.
    """
    depth = ndimage.distance_transform_edt(np.pad(region, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    core = depth > 0.5 * float(depth.max())
    return float(hu[core & region].mean())


def _extreme_pair(points: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """Largest distance between two points and the unit vector joining them."""
    if len(points) < 2:
        return 0.0, np.zeros(points.shape[1])
    candidates = points
    if len(points) > 8:
        try:
            candidates = points[ConvexHull(points, qhull_options="QJ").vertices]
        except QhullError:
            candidates = points
    distances = squareform(pdist(candidates))
    first, second = np.unravel_index(int(np.argmax(distances)), distances.shape)
    vector = candidates[second] - candidates[first]
    length = float(np.linalg.norm(vector))
    return length, (vector / length if length > 0 else vector)


def _maximum_diameter(points_mm: NDArray[np.float64], spacing: NDArray[np.float64]) -> float:
    length, direction = _extreme_pair(points_mm)
    return length + 0.5 * float(np.sum(np.abs(direction) * spacing)) if length > 0 else float(spacing.min())


def _axial_long_and_short_axes(region: NDArray[np.bool_], spacing: NDArray[np.float64]) -> tuple[float, float]:
    """Longest in-plane diameter over all slices, and the widest extent perpendicular to it there."""
    in_plane_spacing = spacing[1:]
    best_long, best_short = 0.0, 0.0
    for slice_mask in region:
        if not slice_mask.any():
            continue
        points = np.argwhere(slice_mask) * in_plane_spacing
        length, direction = _extreme_pair(points)
        if length == 0:
            long_axis = float(in_plane_spacing.max())
            short_axis = float(in_plane_spacing.min())
        else:
            long_axis = length + 0.5 * float(np.sum(np.abs(direction) * in_plane_spacing))
            perpendicular = np.array([-direction[1], direction[0]])
            projections = points @ perpendicular
            short_axis = float(projections.max() - projections.min()) + 0.5 * float(
                np.sum(np.abs(perpendicular) * in_plane_spacing)
            )
        if long_axis > best_long:
            best_long, best_short = long_axis, short_axis
    return best_long, best_short


# --- boxes --------------------------------------------------------------------------------------


def _bounding_box(mask: NDArray[np.bool_]) -> VoxelBox:
    slices = ndimage.find_objects(mask.astype(np.uint8))[0]
    return _box_from_slices(slices, offset=(0, 0, 0))


def _box_from_slices(slices: tuple[slice, ...], offset: tuple[int, int, int]) -> VoxelBox:
    start = tuple(int(s.start) + o for s, o in zip(slices, offset, strict=True))
    stop = tuple(int(s.stop) + o for s, o in zip(slices, offset, strict=True))
    return VoxelBox(start=start, stop=stop)  # type: ignore[arg-type]
