"""Nodule findings as standard DICOM objects, built with highdicom.

- ``build_nodule_segmentation``: a DICOM Segmentation (PS3.3 A.51, BINARY) over the source CT
  series with **one segment per nodule**. Viewers (OHIF's segmentation panel, 3D Slicer) list
  each segment with its own label, colour and visibility toggle and jump to it; each segment
  carries a Tracking ID/UID (PS3.3 C.8.20.4) so a nodule can be followed across studies; and the
  SR's measurement group for a nodule references exactly its segment (TID 1411 "Referenced
  Segment"), which a single shared "Nodule" segment could not do.
- ``build_nodule_measurement_report``: a Comprehensive 3D SR (PS3.3 A.35.13) holding a TID 1500
  Measurement Report: one TID 1411 Volumetric ROI group per nodule, referencing its SEG segment,
  with long axis (SCT 103339001, mm), short axis (SCT 103340004, mm), volume (SCT 118565006,
  mm3) and mean attenuation (DCM 112031 Attenuation Coefficient with derivation SCT 373098007
  Mean, [hnsf'U]), the finding site (lung, with laterality), the algorithm (TID 4019) and the
  device observer (TID 1004). It is complete but unverified (PS3.3 C.17.2): an AI result
  awaiting a radiologist. Beside each volumetric group, a TID 1410 Planar ROI group with the same
  Tracking ID/UID draws the nodule as a CIRCLE (SCOORD, PS3.3 C.18.6) of its long-axis diameter
  on the slice through its centre (``ReferencedSOPInstanceUID`` of that CT image), with the
  in-plane long and short axes: the region a viewer's SR display (OHIF's cornerstone-dicom-sr)
  draws on the image, which a SEG reference alone does not give it (docs/ai.md "Findings in the
  viewer"). highdicom allows one kind of ROI reference per group, hence two groups per nodule.
- ``nodule_finding_references``: per nodule, its Tracking ID/UID and its centre slice, for the
  job's JSON summary (the reading page's findings panel and the radiologist's verdicts).
- ``to_bytes``: a dataset as a DICOM Part 10 file (PS3.10) in memory, for the archive.

No Django here; the caller stores the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from apps.ai.engines.base import EngineDescriptor, Nodule, sort_slices_along_normal

# PS3.16 CID 100 "Quantitative Diagnostic Imaging Procedures" has no chest CT entry; SNOMED CT's
# procedure concept is what TID 1500 row 3 "Procedure reported" takes.
CT_OF_CHEST = Code("169069000", "SCT", "CT of chest")
# Distinct, colour-blind-friendly segment colours (Okabe–Ito), cycled.
SEGMENT_COLOURS_RGB = (
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
    (0, 114, 178), (213, 94, 0), (204, 121, 167),
)


class NoFindingsToEncode(ValueError):
    """A SEG needs at least one segment and a TID 1500 report at least one measurement group."""


@dataclass(frozen=True)
class ResultCreator:
    """The algorithm and the (software) device that created a result.

    The algorithm goes into each segment (Segmentation Algorithm Identification, PS3.3 C.8.20.2)
    and into each SR measurement group (TID 4019); the device into the General Equipment Module
    (PS3.3 C.7.5.1) of both objects and the SR's device observer context (TID 1004).
    """

    algorithm_name: str
    algorithm_version: str
    manufacturer: str
    manufacturer_model_name: str
    device_serial_number: str = "1"
    algorithm_family: Code = field(default_factory=lambda: codes.cid7162.ArtificialIntelligence)
    institution_name: str | None = None

    @classmethod
    def from_descriptor(cls, descriptor: EngineDescriptor, *, algorithm_family: Code | None = None,
                        device_serial_number: str = "1") -> ResultCreator:
        return cls(
            algorithm_name=descriptor.name,
            algorithm_version=descriptor.version,
            manufacturer=descriptor.vendor,
            manufacturer_model_name=descriptor.name,
            device_serial_number=device_serial_number,
            algorithm_family=algorithm_family or codes.cid7162.ArtificialIntelligence,
        )

    @property
    def device_observer_uid(self) -> str:
        """Stable per device: the same engine build is the same observer in every report."""
        return str(generate_uid(entropy_srcs=[
            self.manufacturer, self.manufacturer_model_name, self.algorithm_version, self.device_serial_number,
        ]))


def _segment_colour(segment_number: int) -> hd.color.CIELabColor:
    red, green, blue = SEGMENT_COLOURS_RGB[(segment_number - 1) % len(SEGMENT_COLOURS_RGB)]
    return hd.color.CIELabColor.from_rgb(red, green, blue)


def _laterality(nodule: Nodule) -> Code | None:
    return {"left": codes.SCT.Left, "right": codes.SCT.Right}.get(nodule.lung_side or "")


def build_nodule_segmentation(
    source_datasets: Sequence[Dataset],
    nodules: Sequence[Nodule],
    *,
    creator: ResultCreator,
    series_number: int,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    instance_number: int = 1,
    series_description: str = "AI pulmonary nodules",
) -> hd.seg.Segmentation:
    """A BINARY Segmentation of ``nodules`` over the CT series they were found in.

    ``source_datasets`` are the series' slices in any order; they are sorted along the slice
    normal exactly as ``volume_from_datasets`` sorted them, which is the order the nodules'
    voxel boxes refer to. Segment k is ``nodules[k-1]``; its label is the nodule's label.
    Frames without any nodule voxel are left out (highdicom's default, PS3.3 C.8.20.2 allows it).
    """
    if not nodules:
        raise NoFindingsToEncode("no nodules: a Segmentation needs at least one segment (PS3.3 C.8.20.2)")
    ordered_sources = sort_slices_along_normal(source_datasets)
    volume_shape = (len(ordered_sources), int(ordered_sources[0].Rows), int(ordered_sources[0].Columns))

    label_map = np.zeros(volume_shape, dtype=np.uint16)
    descriptions: list[hd.seg.SegmentDescription] = []
    algorithm = hd.AlgorithmIdentificationSequence(
        name=creator.algorithm_name, family=creator.algorithm_family, version=creator.algorithm_version,
        source=creator.manufacturer,
    )
    for segment_number, nodule in enumerate(nodules, start=1):
        nodule_mask = nodule.full_mask(volume_shape)
        if (label_map[nodule_mask] != 0).any():
            raise ValueError(f"{nodule.label} overlaps another nodule: segments of a label map must be disjoint")
        label_map[nodule_mask] = segment_number
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=segment_number,
            segment_label=nodule.label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Nodule,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_id=nodule.label,
            tracking_uid=hd.UID(),
            anatomic_regions=[codes.SCT.Lung],
            display_color=_segment_colour(segment_number),
        ))

    return hd.seg.Segmentation(
        source_images=ordered_sources,
        pixel_array=label_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=instance_number,
        manufacturer=creator.manufacturer,
        manufacturer_model_name=creator.manufacturer_model_name,
        software_versions=creator.algorithm_version,
        device_serial_number=creator.device_serial_number,
        content_label="NODULES",
        content_description=f"Pulmonary nodules by {creator.algorithm_name} {creator.algorithm_version}"[:64],
        series_description=series_description,
        institution_name=creator.institution_name,
    )


def _segment_tracking(segmentation: hd.seg.Segmentation, segment_number: int) -> tuple[str, str]:
    description = segmentation.get_segment_description(segment_number)
    if description.tracking_uid is None or description.tracking_id is None:
        raise ValueError(f"segment {segment_number} has no Tracking ID/UID to carry into the report")
    return str(description.tracking_id), str(description.tracking_uid)


@dataclass(frozen=True)
class NoduleCircle:
    """A nodule drawn on the slice through its centre, in that image's pixel coordinates
    (column, row; the top-left corner of the top-left pixel is (0, 0), PS3.3 C.18.6.1.1)."""

    source_image: Dataset
    centre_column_row: tuple[float, float]
    radius_pixels: float

    @property
    def graphic_data(self) -> np.ndarray:
        """CIRCLE: the centre, then a point on the perimeter (PS3.3 C.18.6.1.2), kept inside the image."""
        column, row = self.centre_column_row
        perimeter_column = min(column + self.radius_pixels, float(self.source_image.Columns))
        return np.array([[column, row], [perimeter_column, row]], dtype=np.float32)


def nodule_circle(ordered_sources: Sequence[Dataset], nodule: Nodule) -> NoduleCircle:
    """The slice nearest the nodule's centroid and a circle of its long-axis diameter around it.

    ``ordered_sources`` are sorted along the slice normal (``sort_slices_along_normal``), the order
    of the nodule's voxel indices; the centroid (z, y, x) is a voxel index, a pixel's centre sits
    half a pixel from its corner."""
    if nodule.centroid_voxel_zyx is None:
        raise ValueError(f"{nodule.label} has no centroid to draw it at")
    z, y, x = nodule.centroid_voxel_zyx
    slice_index = min(max(int(round(z)), 0), len(ordered_sources) - 1)
    source = ordered_sources[slice_index]
    column_spacing_mm = float(source.PixelSpacing[1])
    column = min(max(float(x) + 0.5, 0.0), float(source.Columns))
    row = min(max(float(y) + 0.5, 0.0), float(source.Rows))
    return NoduleCircle(source_image=source, centre_column_row=(column, row),
                        radius_pixels=max(nodule.long_axis_mm / 2 / column_spacing_mm, 0.5))


@dataclass(frozen=True)
class NoduleFindingReference:
    """Where a finding of the report is: its number (segment k), Tracking ID/UID and centre slice."""

    number: int
    tracking_id: str
    tracking_uid: str
    centre_sop_instance_uid: str
    centre_series_instance_uid: str

    def as_json(self) -> dict[str, object]:
        return {"number": self.number, "tracking_id": self.tracking_id, "tracking_uid": self.tracking_uid,
                "centre_sop_instance_uid": self.centre_sop_instance_uid,
                "centre_series_instance_uid": self.centre_series_instance_uid}


def nodule_finding_references(source_datasets: Sequence[Dataset], segmentation: hd.seg.Segmentation,
                              nodules: Sequence[Nodule]) -> list[NoduleFindingReference]:
    """Per nodule (in segment order), the identifiers the SEG and SR carry for it."""
    ordered_sources = sort_slices_along_normal(source_datasets)
    references = []
    for number, nodule in enumerate(nodules, start=1):
        tracking_id, tracking_uid = _segment_tracking(segmentation, number)
        centre = nodule_circle(ordered_sources, nodule).source_image
        references.append(NoduleFindingReference(
            number=number, tracking_id=tracking_id, tracking_uid=tracking_uid,
            centre_sop_instance_uid=str(centre.SOPInstanceUID),
            centre_series_instance_uid=str(centre.SeriesInstanceUID)))
    return references


def _nodule_measurements(nodule: Nodule) -> list[hd.sr.Measurement]:
    """TID 300 measurements of one nodule, values rounded to what the method can resolve."""
    return [
        hd.sr.Measurement(name=codes.SCT.LongAxis, value=round(nodule.long_axis_mm, 1), unit=codes.UCUM.Millimeter),
        hd.sr.Measurement(name=codes.SCT.ShortAxis, value=round(nodule.short_axis_mm, 1), unit=codes.UCUM.Millimeter),
        hd.sr.Measurement(name=codes.SCT.Volume, value=round(float(nodule.volume_mm3 or 0.0), 1),
                          unit=codes.UCUM.CubicMillimeter),
        hd.sr.Measurement(name=codes.DCM.AttenuationCoefficient, value=round(nodule.mean_hu, 1),
                          unit=codes.UCUM.HounsfieldUnit, derivation=codes.SCT.Mean),
    ]


def build_nodule_measurement_report(
    source_datasets: Sequence[Dataset],
    segmentation: hd.seg.Segmentation,
    nodules: Sequence[Nodule],
    *,
    creator: ResultCreator,
    series_number: int,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    instance_number: int = 1,
    series_description: str = "AI pulmonary nodule report",
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 Measurement Report in a Comprehensive 3D SR: per nodule a TID 1411 group (its SEG
    segment) followed by a TID 1410 group (a CIRCLE on its centre slice), both with its Tracking ID/UID.

    ``segmentation`` is the one ``build_nodule_segmentation`` made from the same ``nodules`` (in
    the same order): group k references its segment k and reuses the segment's Tracking ID/UID.
    The evidence (Current Requested Procedure Evidence Sequence, PS3.3 C.17.2.3) lists every
    referenced instance: all source CT slices and the SEG.
    """
    if not nodules:
        raise NoFindingsToEncode("no nodules: TID 1500 needs at least one measurement group")
    if segmentation.number_of_segments != len(nodules):
        raise ValueError(
            f"the segmentation has {segmentation.number_of_segments} segments for {len(nodules)} nodules: "
            "build both from the same nodule list"
        )
    source_series_uids = {str(dataset.SeriesInstanceUID) for dataset in source_datasets}
    if len(source_series_uids) != 1:
        raise ValueError("the source datasets must be one series")
    (source_series_uid,) = source_series_uids

    algorithm = hd.sr.AlgorithmIdentification(
        name=creator.algorithm_name, version=creator.algorithm_version, manufacturer=creator.manufacturer,
    )
    observation_context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.cid270.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=creator.device_observer_uid,
                name=creator.algorithm_name,
                manufacturer_name=creator.manufacturer,
                model_name=creator.manufacturer_model_name,
                serial_number=creator.device_serial_number,
            ),
        ),
    )

    ordered_sources = sort_slices_along_normal(source_datasets)
    groups: list[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
                 | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations] = []
    for segment_number, nodule in enumerate(nodules, start=1):
        tracking_id, tracking_uid = _segment_tracking(segmentation, segment_number)
        if tracking_id != nodule.label:
            raise ValueError(f"segment {segment_number} is {tracking_id!r}, not {nodule.label!r}: nodules out of order")
        # Constructed directly: ReferencedSegment.from_segmentation() fails on a one-segment SEG.
        referenced_segment = hd.sr.ReferencedSegment(
            sop_class_uid=segmentation.SOPClassUID,
            sop_instance_uid=segmentation.SOPInstanceUID,
            segment_number=segment_number,
            source_series=hd.sr.SourceSeriesForSegmentation(source_series_uid),
        )
        laterality = _laterality(nodule)
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier=tracking_id),
            referenced_segment=referenced_segment,
            finding_type=codes.SCT.Nodule,
            finding_category=codes.SCT.MorphologicallyAbnormalStructure,
            algorithm_id=algorithm,
            finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Lung, laterality=laterality)],
            measurements=_nodule_measurements(nodule),
        ))
        circle = nodule_circle(ordered_sources, nodule)
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier=tracking_id),
            referenced_region=hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.CIRCLE, graphic_data=circle.graphic_data,
                source_image=hd.sr.SourceImageForRegion(
                    referenced_sop_class_uid=str(circle.source_image.SOPClassUID),
                    referenced_sop_instance_uid=str(circle.source_image.SOPInstanceUID)),
            ),
            finding_type=codes.SCT.Nodule,
            finding_category=codes.SCT.MorphologicallyAbnormalStructure,
            algorithm_id=algorithm,
            finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Lung, laterality=laterality)],
            measurements=_nodule_measurements(nodule)[:2],
        ))

    report = hd.sr.MeasurementReport(
        observation_context=observation_context,
        procedure_reported=CT_OF_CHEST,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[*source_datasets, segmentation],
        content=report,
        series_instance_uid=series_instance_uid or hd.UID(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=instance_number,
        manufacturer=creator.manufacturer,
        manufacturer_model_name=creator.manufacturer_model_name,
        software_versions=creator.algorithm_version,
        device_serial_number=creator.device_serial_number,
        institution_name=creator.institution_name,
        series_description=series_description,
        is_complete=True,
        is_final=False,
        is_verified=False,
    )


def to_bytes(dataset: Dataset) -> bytes:
    """The dataset as a DICOM Part 10 file (preamble, DICM, File Meta Information; PS3.10 7.1)."""
    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
