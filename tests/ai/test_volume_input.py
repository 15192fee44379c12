"""volume_from_datasets: one series of CT slices → a sorted HU volume with its geometry."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from apps.ai.engines.base import (
    EngineDescriptor,
    OutputKind,
    VolumeRefused,
    volume_from_datasets,
)
from tests.factories.chest_phantom import ChestPhantom, ChestPhantomSpec, generate_chest_phantom

SMALL = ChestPhantomSpec(rows=96, columns=96, slices=12, pixel_spacing_mm=2.0, slice_thickness_mm=2.5,
                         nodules=(), vessels=())


@pytest.fixture(scope="module")
def phantom() -> ChestPhantom:
    return generate_chest_phantom(SMALL)


@pytest.fixture
def datasets(phantom: ChestPhantom) -> list[Dataset]:
    return phantom.datasets()


def test_shuffled_slices_are_sorted_along_the_slice_normal(phantom: ChestPhantom, datasets: list[Dataset]) -> None:
    shuffled = datasets[:]
    random.Random(4).shuffle(shuffled)

    volume = volume_from_datasets(shuffled)

    assert volume.sop_instance_uids == phantom.sop_instance_uids
    np.testing.assert_array_equal(volume.voxels, phantom.hu)


def test_slices_stored_head_to_feet_are_sorted_by_position_not_instance_number(
        phantom: ChestPhantom, datasets: list[Dataset]) -> None:
    for dataset in datasets:
        dataset.InstanceNumber = len(datasets) - int(dataset.InstanceNumber) + 1

    volume = volume_from_datasets(datasets)

    assert volume.sop_instance_uids == phantom.sop_instance_uids


def test_rescale_slope_and_intercept_give_hounsfield_units(datasets: list[Dataset], phantom: ChestPhantom) -> None:
    first = datasets[0]
    stored = first.pixel_array.astype(np.float32)
    volume = volume_from_datasets(datasets)
    np.testing.assert_array_equal(volume.voxels[0], stored - 1024.0)
    np.testing.assert_array_equal(volume.voxels[0], phantom.hu[0])


def test_geometry_comes_from_the_image_plane_module(datasets: list[Dataset]) -> None:
    volume = volume_from_datasets(datasets)

    assert volume.spacing_mm == pytest.approx((2.5, 2.0, 2.0))
    assert volume.origin_mm == pytest.approx(tuple(float(v) for v in datasets[0].ImagePositionPatient))
    assert volume.slice_direction == pytest.approx((0.0, 0.0, 1.0))
    # Voxel (z=2, y=3, x=5) is 5 columns along the row direction, 3 rows down, 2 slices up.
    x0, y0, z0 = volume.origin_mm
    assert volume.voxel_to_patient((2, 3, 5)) == pytest.approx((x0 + 10.0, y0 + 6.0, z0 + 5.0))
    assert volume.modality == "CT"
    assert volume.body_part_examined == "CHEST"
    assert volume.series_instance_uid == datasets[0].SeriesInstanceUID


def test_a_slice_from_another_series_is_refused(datasets: list[Dataset]) -> None:
    stranger = copy.deepcopy(datasets[3])
    stranger.SeriesInstanceUID = generate_uid()
    stranger.SOPInstanceUID = generate_uid()

    with pytest.raises(VolumeRefused, match="SeriesInstanceUID"):
        volume_from_datasets([*datasets, stranger])


def test_a_slice_of_another_size_is_refused(datasets: list[Dataset]) -> None:
    datasets[5].Rows = 64

    with pytest.raises(VolumeRefused, match="equal size"):
        volume_from_datasets(datasets)


def test_a_slice_with_other_pixel_spacing_is_refused(datasets: list[Dataset]) -> None:
    datasets[5].PixelSpacing = [1.0, 1.0]

    with pytest.raises(VolumeRefused, match="Pixel Spacing"):
        volume_from_datasets(datasets)


def test_a_missing_slice_is_refused_as_uneven_spacing(datasets: list[Dataset]) -> None:
    with pytest.raises(VolumeRefused, match="not uniformly spaced"):
        volume_from_datasets(datasets[:5] + datasets[6:])


def test_two_slices_at_one_position_are_refused(datasets: list[Dataset]) -> None:
    duplicate = copy.deepcopy(datasets[4])
    duplicate.SOPInstanceUID = generate_uid()

    with pytest.raises(VolumeRefused, match="same position"):
        volume_from_datasets([*datasets, duplicate])


def test_a_slice_without_position_is_refused(datasets: list[Dataset]) -> None:
    del datasets[2].ImagePositionPatient

    with pytest.raises(VolumeRefused, match="ImagePositionPatient"):
        volume_from_datasets(datasets)


def test_a_gantry_tilted_stack_is_refused(datasets: list[Dataset]) -> None:
    for index, dataset in enumerate(datasets):
        x, y, z = (float(value) for value in dataset.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y + 0.4 * index, z]  # each slice slides 0.4 mm posteriorly

    with pytest.raises(VolumeRefused, match="gantry tilt"):
        volume_from_datasets(datasets)


def test_no_datasets_are_refused() -> None:
    with pytest.raises(VolumeRefused, match="no datasets"):
        volume_from_datasets([])


def test_descriptor_lists_why_it_refuses_a_volume(datasets: list[Dataset]) -> None:
    volume = volume_from_datasets(datasets)
    descriptor = EngineDescriptor(
        name="mr-only", version="1", vendor="test", description="", modalities=("MR",),
        body_parts=("BRAIN",), minimum_slices=50, outputs=(OutputKind.JSON,),
    )

    assert descriptor.refusal_reasons(volume) == [
        "modality 'CT' is not one of ['MR']",
        "body part 'CHEST' is not one of ['BRAIN']",
        "12 slices, fewer than the 50 required",
    ]
