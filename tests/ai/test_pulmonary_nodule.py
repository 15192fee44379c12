"""The classical pulmonary nodule detector, measured against phantoms of known truth.

Tolerances: centroid within 2 mm, long axis within 1.5 mm or 15 %, volume within 20 %, mean
attenuation within 30 HU of the truth.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from apps.ai.engines.base import Nodule, VolumeNotAccepted, volume_from_datasets
from apps.ai.engines.pulmonary_nodule import PulmonaryNoduleDetector, segment_lungs
from tests.ai.phantom_detections import NOISY_SPEC, PHANTOM_SPECS, Detection, detection_on
from tests.factories.chest_phantom import ChestPhantomSpec, NoduleTruth, generate_chest_phantom

CENTROID_TOLERANCE_MM = 2.0
VOLUME_TOLERANCE_FRACTION = 0.20
MEAN_HU_TOLERANCE = 30.0


def diameter_tolerance_mm(truth_mm: float) -> float:
    return max(1.5, 0.15 * truth_mm)


def nodules_of(detection: Detection) -> list[Nodule]:
    return [finding for finding in detection.result.findings if isinstance(finding, Nodule)]


def match(truth: NoduleTruth, nodules: list[Nodule]) -> Nodule | None:
    """The reported nodule whose centroid is nearest the truth's centre, if within tolerance."""
    def distance(nodule: Nodule) -> float:
        assert nodule.centroid_patient_mm is not None
        return float(np.linalg.norm(np.subtract(nodule.centroid_patient_mm, truth.center_patient_mm)))

    nearest = min(nodules, key=distance, default=None)
    return nearest if nearest is not None and distance(nearest) <= CENTROID_TOLERANCE_MM else None


@pytest.fixture(scope="module", params=sorted(PHANTOM_SPECS))
def detection(request: pytest.FixtureRequest) -> Detection:
    return detection_on(PHANTOM_SPECS[request.param])


def test_every_truth_nodule_is_found_and_measured_within_tolerance(detection: Detection) -> None:
    nodules = nodules_of(detection)
    for truth in detection.phantom.nodules:
        found = match(truth, nodules)
        assert found is not None, f"{truth.label} not found"
        assert abs(found.long_axis_mm - truth.long_axis_mm) <= diameter_tolerance_mm(truth.long_axis_mm), truth.label
        assert found.volume_mm3 == pytest.approx(truth.volume_mm3, rel=VOLUME_TOLERANCE_FRACTION), truth.label
        assert abs(found.mean_hu - truth.hu) <= MEAN_HU_TOLERANCE, truth.label
        assert found.lung_side == truth.lung, truth.label


def test_nothing_but_the_truth_nodules_is_reported_so_no_vessel(detection: Detection) -> None:
    nodules = nodules_of(detection)
    matched = {id(match(truth, nodules)) for truth in detection.phantom.nodules}

    assert len(nodules) == len(detection.phantom.nodules)
    assert matched == {id(nodule) for nodule in nodules}


def test_every_reported_nodule_lies_in_the_lungs(detection: Detection) -> None:
    for nodule in nodules_of(detection):
        mask = nodule.full_mask(detection.volume.shape)
        inside = (mask & detection.phantom.lung_mask).sum() / mask.sum()
        # A juxta-pleural nodule overlaps the wall by half a millimetre by construction.
        assert inside >= 0.97, nodule.label


def test_juxta_pleural_and_juxta_vascular_nodules_are_recognised(detection: Detection) -> None:
    nodules = nodules_of(detection)
    for truth in detection.phantom.nodules:
        found = match(truth, nodules)
        assert found is not None
        if truth.juxta_pleural:
            assert found.attachment == "juxta_pleural"
        elif truth.label.startswith("juxta-vascular"):
            assert found.attachment == "juxta_vascular"
        else:
            assert found.attachment == "isolated"


def test_the_lung_mask_covers_the_lungs_and_little_else(detection: Detection) -> None:
    lungs = segment_lungs(detection.volume).mask
    truth = detection.phantom.lung_mask

    assert (lungs & truth).sum() / truth.sum() >= 0.98
    assert (lungs & ~truth).sum() / lungs.sum() <= 0.01


def test_nodules_are_found_in_noise_of_80_hu() -> None:
    """At σ = 80 HU the smallest nodule's interior holds a handful of voxels: its mean HU is
    noise-limited (standard error ≈ 30 HU), so only its geometry is held to the usual tolerance."""
    detection = detection_on(NOISY_SPEC)
    nodules = nodules_of(detection)

    assert len(nodules) == len(detection.phantom.nodules)
    for truth in detection.phantom.nodules:
        found = match(truth, nodules)
        assert found is not None, truth.label
        assert abs(found.long_axis_mm - truth.long_axis_mm) <= diameter_tolerance_mm(truth.long_axis_mm)
        assert found.volume_mm3 == pytest.approx(truth.volume_mm3, rel=VOLUME_TOLERANCE_FRACTION)
        if truth.long_axis_mm >= 8:
            assert abs(found.mean_hu - truth.hu) <= MEAN_HU_TOLERANCE


def test_vessels_alone_give_no_finding() -> None:
    detection = detection_on(ChestPhantomSpec(nodules=(), slices=60, seed=2))

    assert detection.result.findings == ()
    assert detection.result.summary["candidates"]["rejected_by_shape"] >= 4


def test_nodules_are_numbered_largest_first_and_labelled_in_the_label_volume() -> None:
    detection = detection_on(PHANTOM_SPECS["thin-0.7mm-1.25mm"])
    nodules = nodules_of(detection)
    label_volume = detection.result.label_volume
    assert label_volume is not None

    assert [nodule.label for nodule in nodules] == [f"Nodule {n}" for n in range(1, len(nodules) + 1)]
    assert [nodule.long_axis_mm for nodule in nodules] == sorted((n.long_axis_mm for n in nodules), reverse=True)
    for number, nodule in enumerate(nodules, start=1):
        np.testing.assert_array_equal(label_volume == number, nodule.full_mask(detection.volume.shape))


def test_the_summary_is_plain_json() -> None:
    detection = detection_on(PHANTOM_SPECS["thin-0.7mm-1.25mm"])
    summary = json.loads(json.dumps(detection.result.summary))

    assert summary["nodule_count"] == len(detection.phantom.nodules)
    assert summary["engine"]["name"] == "imaging-cloud-pulmonary-nodule"
    assert summary["nodules"][0]["long_axis_mm"] == pytest.approx(15.0, abs=1.5)
    assert summary["lungs"]["found"] == 2


def test_detection_is_deterministic() -> None:
    detection = detection_on(PHANTOM_SPECS["thin-0.7mm-1.25mm"])
    again = PulmonaryNoduleDetector().run(detection.volume)

    assert [nodule.as_json() for nodule in again.findings] == [nodule.as_json() for nodule in detection.result.findings]


def test_a_body_without_lungs_gives_no_finding() -> None:
    phantom = generate_chest_phantom(ChestPhantomSpec(rows=96, columns=96, slices=24, pixel_spacing_mm=2.0,
                                                      slice_thickness_mm=2.5, nodules=(), vessels=()))
    volume = volume_from_datasets(phantom.datasets())
    # Fill the lungs with soft tissue: a body, but no air inside it.
    soft_tissue_only = np.where(phantom.lung_mask, np.float32(40), volume.voxels)

    result = PulmonaryNoduleDetector().run(replace(volume, voxels=soft_tissue_only))

    assert result.findings == ()
    assert result.summary["lungs"]["found"] == 0


def test_a_non_ct_volume_is_refused() -> None:
    detection = detection_on(PHANTOM_SPECS["thin-0.7mm-1.25mm"])

    with pytest.raises(VolumeNotAccepted, match="modality 'MR'"):
        PulmonaryNoduleDetector().run(replace(detection.volume, modality="MR"))
