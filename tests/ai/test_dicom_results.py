"""SEG and TID 1500 SR built from a detection, written to bytes and read back (pydicom, highdicom)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from io import BytesIO

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian

from apps.ai.engines.base import Nodule, sort_slices_along_normal
from apps.ai.results.dicom_results import (
    CT_OF_CHEST,
    NoFindingsToEncode,
    ResultCreator,
    build_nodule_measurement_report,
    build_nodule_segmentation,
    nodule_finding_references,
    to_bytes,
)
from tests.ai.phantom_detections import PHANTOM_SPECS, Detection, detection_on

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_3D_SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.34"


@dataclass(frozen=True)
class EncodedResults:
    detection: Detection
    nodules: list[Nodule]
    creator: ResultCreator
    segmentation_bytes: bytes
    report_bytes: bytes


def measurement_report(payload: bytes) -> hd.sr.MeasurementReport:
    """The TID 1500 content tree of an SR read back from bytes."""
    content = hd.sr.srread(BytesIO(payload)).content
    assert isinstance(content, hd.sr.MeasurementReport)
    return content


@pytest.fixture(scope="module")
def encoded() -> EncodedResults:
    detection = detection_on(PHANTOM_SPECS["thin-0.7mm-1.25mm"])
    nodules = [finding for finding in detection.result.findings if isinstance(finding, Nodule)]
    creator = ResultCreator.from_descriptor(detection.result.engine, algorithm_family=codes.cid7162.MorphologicalOperations)
    # The archive hands slices over in no particular order.
    shuffled = detection.datasets[:]
    random.Random(7).shuffle(shuffled)
    segmentation = build_nodule_segmentation(shuffled, nodules, creator=creator, series_number=901)
    report = build_nodule_measurement_report(shuffled, segmentation, nodules, creator=creator, series_number=902)
    return EncodedResults(detection, nodules, creator, to_bytes(segmentation), to_bytes(report))


def test_both_objects_are_part_10_files(encoded: EncodedResults) -> None:
    for payload, sop_class in ((encoded.segmentation_bytes, SEGMENTATION_STORAGE),
                               (encoded.report_bytes, COMPREHENSIVE_3D_SR_STORAGE)):
        assert payload[128:132] == b"DICM"
        dataset = pydicom.dcmread(BytesIO(payload))
        assert dataset.SOPClassUID == sop_class
        assert dataset.file_meta.MediaStorageSOPClassUID == sop_class
        assert dataset.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        source = encoded.detection.datasets[0]
        assert (dataset.PatientID, dataset.StudyInstanceUID) == (source.PatientID, source.StudyInstanceUID)
        assert dataset.SeriesInstanceUID != source.SeriesInstanceUID


def test_segmentation_has_one_labelled_tracked_segment_per_nodule(encoded: EncodedResults) -> None:
    segmentation = hd.seg.segread(BytesIO(encoded.segmentation_bytes))

    assert segmentation.SegmentationType == "BINARY"
    assert segmentation.number_of_segments == len(encoded.nodules)
    for number, nodule in enumerate(encoded.nodules, start=1):
        description = segmentation.get_segment_description(number)
        assert description.segment_label == nodule.label
        assert description.tracking_id == nodule.label
        assert description.tracking_uid is not None
        assert description.segmented_property_type == codes.SCT.Nodule
        assert description.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        algorithm = description.algorithm_identification
        assert algorithm is not None
        assert (algorithm[0].AlgorithmName, algorithm[0].AlgorithmVersion) == ("imaging-cloud-pulmonary-nodule", "1.0.0")
    assert segmentation.ManufacturerModelName == "imaging-cloud-pulmonary-nodule"
    assert segmentation.SoftwareVersions == "1.0.0"
    assert segmentation.DeviceSerialNumber == "1"


def test_segmentation_references_the_source_ct_series(encoded: EncodedResults) -> None:
    segmentation = hd.seg.segread(BytesIO(encoded.segmentation_bytes))
    source = encoded.detection.datasets

    referenced = segmentation.get_source_image_uids()
    assert {series for _, series, _ in referenced} == {source[0].SeriesInstanceUID}
    assert {sop for _, _, sop in referenced} == {dataset.SOPInstanceUID for dataset in source}
    # One frame per segment per slice it covers: slices without that nodule are omitted.
    label_volume = encoded.detection.result.label_volume
    assert label_volume is not None
    frames_expected = sum(int((label_volume == number).any(axis=(1, 2)).sum())
                          for number in range(1, len(encoded.nodules) + 1))
    assert segmentation.NumberOfFrames == frames_expected
    assert segmentation.FrameOfReferenceUID == source[0].FrameOfReferenceUID


def test_segmentation_pixels_are_the_nodule_masks(encoded: EncodedResults) -> None:
    segmentation = hd.seg.segread(BytesIO(encoded.segmentation_bytes))
    volume = encoded.detection.volume

    labels = segmentation.get_pixels_by_source_instance(
        source_sop_instance_uids=list(volume.sop_instance_uids), combine_segments=True,
    )

    np.testing.assert_array_equal(labels, encoded.detection.result.label_volume)


def test_report_has_one_volumetric_group_per_nodule_referencing_its_segment(encoded: EncodedResults) -> None:
    report = measurement_report(encoded.report_bytes)
    segmentation = hd.seg.segread(BytesIO(encoded.segmentation_bytes))

    groups = report.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(encoded.nodules)
    for number, (group, nodule) in enumerate(zip(groups, encoded.nodules, strict=True), start=1):
        assert group.tracking_uid == segmentation.get_segment_description(number).tracking_uid
        assert group.finding_type == codes.SCT.Nodule
        referenced = group.referenced_segment
        assert referenced is not None
        assert referenced.referenced_sop_instance_uid == segmentation.SOPInstanceUID
        assert referenced.referenced_segment_numbers == [number]
        source_series = referenced.source_series_for_segmentation
        assert source_series is not None
        assert source_series.value == encoded.detection.datasets[0].SeriesInstanceUID
        (site,) = group.finding_sites
        assert site.value == codes.SCT.Lung
        laterality = {"left": codes.SCT.Left, "right": codes.SCT.Right}[nodule.lung_side or ""]
        assert site.laterality == laterality


def test_report_measurements_carry_the_nodule_values_and_units(encoded: EncodedResults) -> None:
    groups = measurement_report(encoded.report_bytes).get_volumetric_roi_measurement_groups()

    for group, nodule in zip(groups, encoded.nodules, strict=True):
        values = {
            (measurement.name.value, measurement.unit.value): measurement.value
            for measurement in group.get_measurements()
        }
        assert values == {
            ("103339001", "mm"): pytest.approx(nodule.long_axis_mm, abs=0.05),
            ("103340004", "mm"): pytest.approx(nodule.short_axis_mm, abs=0.05),
            ("118565006", "mm3"): pytest.approx(nodule.volume_mm3, abs=0.05),
            ("112031", "[hnsf'U]"): pytest.approx(nodule.mean_hu, abs=0.05),
        }
        (attenuation,) = group.get_measurements(name=codes.DCM.AttenuationCoefficient)
        assert attenuation.derivation == codes.SCT.Mean


def test_report_names_the_algorithm_and_the_device_observer(encoded: EncodedResults) -> None:
    content = measurement_report(encoded.report_bytes)

    (device_context,) = content.get_observer_contexts(observer_type=codes.cid270.Device)
    attributes = device_context.observer_identifying_attributes
    assert isinstance(attributes, hd.sr.DeviceObserverIdentifyingAttributes)
    assert attributes.uid == encoded.creator.device_observer_uid
    assert attributes.name == "imaging-cloud-pulmonary-nodule"
    assert attributes.manufacturer_name == "Imaging Cloud"
    (group, *_) = content.get_volumetric_roi_measurement_groups()
    algorithm_items = {item.name.meaning: item.value for item in group[0].ContentSequence
                       if item.name.meaning in ("Algorithm Name", "Algorithm Version")}
    assert algorithm_items == {"Algorithm Name": "imaging-cloud-pulmonary-nodule", "Algorithm Version": "1.0.0"}
    procedure = [item for item in content[0].ContentSequence if item.name == codes.DCM.ProcedureReported]
    assert procedure[0].value == CT_OF_CHEST


def test_report_evidence_lists_every_ct_slice_and_the_segmentation(encoded: EncodedResults) -> None:
    report = hd.sr.srread(BytesIO(encoded.report_bytes))
    segmentation = pydicom.dcmread(BytesIO(encoded.segmentation_bytes))

    evidence = {(sop, sop_class) for _, _, sop, sop_class in report.get_evidence(current_procedure_only=True)}

    expected = {(uid, "1.2.840.10008.5.1.4.1.1.2") for uid in encoded.detection.volume.sop_instance_uids}
    expected.add((segmentation.SOPInstanceUID, SEGMENTATION_STORAGE))
    assert evidence == expected


def test_report_is_complete_and_awaits_verification(encoded: EncodedResults) -> None:
    report = pydicom.dcmread(BytesIO(encoded.report_bytes))

    assert (report.CompletionFlag, report.VerificationFlag) == ("COMPLETE", "UNVERIFIED")
    assert report.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert report.Modality == "SR"


def test_a_single_nodule_gives_a_single_segment_report(encoded: EncodedResults) -> None:
    first = encoded.nodules[:1]
    datasets = encoded.detection.datasets
    segmentation = build_nodule_segmentation(datasets, first, creator=encoded.creator, series_number=901)
    report = build_nodule_measurement_report(datasets, segmentation, first, creator=encoded.creator, series_number=902)

    reread = measurement_report(to_bytes(report))

    (group,) = reread.get_volumetric_roi_measurement_groups()
    assert group.referenced_segment is not None
    assert group.referenced_segment.referenced_segment_numbers == [1]


def test_no_nodules_cannot_be_encoded(encoded: EncodedResults) -> None:
    with pytest.raises(NoFindingsToEncode):
        build_nodule_segmentation(encoded.detection.datasets, [], creator=encoded.creator, series_number=901)


def test_a_report_for_other_nodules_than_the_segmentations_is_refused(encoded: EncodedResults) -> None:
    datasets = encoded.detection.datasets
    segmentation = build_nodule_segmentation(datasets, encoded.nodules[:2], creator=encoded.creator, series_number=901)

    with pytest.raises(ValueError, match="2 segments for 1 nodules"):
        build_nodule_measurement_report(datasets, segmentation, encoded.nodules[:1], creator=encoded.creator,
                                        series_number=902)
    with pytest.raises(ValueError, match="nodules out of order"):
        build_nodule_measurement_report(datasets, segmentation, encoded.nodules[1::-1], creator=encoded.creator,
                                        series_number=902)


# --- the image region a viewer draws (docs/ai.md "Findings in the viewer") ---------------------------


def test_report_has_one_planar_circle_group_per_nodule_with_the_nodules_tracking_uid(encoded: EncodedResults) -> None:
    report = measurement_report(encoded.report_bytes)
    segmentation = hd.seg.segread(BytesIO(encoded.segmentation_bytes))

    planar = report.get_planar_roi_measurement_groups()
    assert len(planar) == len(encoded.nodules)
    for number, (group, nodule) in enumerate(zip(planar, encoded.nodules, strict=True), start=1):
        assert group.tracking_uid == segmentation.get_segment_description(number).tracking_uid
        assert group.finding_type == codes.SCT.Nodule
        region = group.roi
        assert isinstance(region, hd.sr.ImageRegion)
        assert region.graphic_type == hd.sr.GraphicTypeValues.CIRCLE
        values = {(m.name.value, m.unit.value): m.value for m in group.get_measurements()}
        assert values == {("103339001", "mm"): pytest.approx(nodule.long_axis_mm, abs=0.05),
                          ("103340004", "mm"): pytest.approx(nodule.short_axis_mm, abs=0.05)}


def test_each_circle_lies_in_the_centre_slice_of_its_nodule_with_the_long_axis_diameter(encoded: EncodedResults) -> None:
    ordered = sort_slices_along_normal(encoded.detection.datasets)
    planar = measurement_report(encoded.report_bytes).get_planar_roi_measurement_groups()
    for group, nodule in zip(planar, encoded.nodules, strict=True):
        assert nodule.centroid_voxel_zyx is not None
        z, y, x = nodule.centroid_voxel_zyx
        centre_slice = ordered[int(round(z))]
        region = group.roi
        assert isinstance(region, hd.sr.ImageRegion)
        (source,) = region.ContentSequence
        assert source.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == centre_slice.SOPInstanceUID
        assert source.ReferencedSOPSequence[0].ReferencedSOPClassUID == centre_slice.SOPClassUID
        (centre, perimeter) = region.value
        assert 0 <= centre[0] <= centre_slice.Columns and 0 <= centre[1] <= centre_slice.Rows
        assert 0 <= perimeter[0] <= centre_slice.Columns and 0 <= perimeter[1] <= centre_slice.Rows
        assert tuple(centre) == pytest.approx((x + 0.5, y + 0.5), abs=1e-3)
        radius_mm = (perimeter[0] - centre[0]) * float(centre_slice.PixelSpacing[1])
        assert radius_mm == pytest.approx(nodule.long_axis_mm / 2, abs=1e-2)


def test_the_circles_instance_is_in_the_reports_evidence(encoded: EncodedResults) -> None:
    dataset = pydicom.dcmread(BytesIO(encoded.report_bytes))
    evidence = {item.ReferencedSOPInstanceUID for study in dataset.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for item in series.ReferencedSOPSequence}
    for group in measurement_report(encoded.report_bytes).get_planar_roi_measurement_groups():
        (source,) = group.roi.ContentSequence
        assert source.ReferencedSOPSequence[0].ReferencedSOPInstanceUID in evidence


def test_report_read_back_as_comprehensive_3d_sr_keeps_both_groups_per_nodule(encoded: EncodedResults) -> None:
    report = hd.sr.Comprehensive3DSR.from_dataset(pydicom.dcmread(BytesIO(encoded.report_bytes)))
    content = report.content
    assert isinstance(content, hd.sr.MeasurementReport)
    assert [group.tracking_uid for group in content.get_volumetric_roi_measurement_groups()] == \
        [group.tracking_uid for group in content.get_planar_roi_measurement_groups()]


def test_finding_references_name_each_nodules_tracking_uid_and_centre_slice(encoded: EncodedResults) -> None:
    segmentation = hd.seg.segread(BytesIO(encoded.segmentation_bytes))
    references = nodule_finding_references(encoded.detection.datasets, segmentation, encoded.nodules)
    ordered = sort_slices_along_normal(encoded.detection.datasets)
    assert [reference.number for reference in references] == list(range(1, len(encoded.nodules) + 1))
    for reference, nodule in zip(references, encoded.nodules, strict=True):
        description = segmentation.get_segment_description(reference.number)
        assert (reference.tracking_id, reference.tracking_uid) == (description.tracking_id, description.tracking_uid)
        assert nodule.centroid_voxel_zyx is not None
        assert reference.centre_sop_instance_uid == ordered[int(round(nodule.centroid_voxel_zyx[0]))].SOPInstanceUID
