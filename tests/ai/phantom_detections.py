"""Phantoms and their detections shared by the AI tests, made once per process (~1 s each).

Pure tests: no database, no Django models.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pydicom.dataset import Dataset

from apps.ai.engines.base import EngineResult, VolumeInput, volume_from_datasets
from apps.ai.engines.pulmonary_nodule import PulmonaryNoduleDetector
from tests.factories.chest_phantom import (
    ChestPhantom,
    ChestPhantomSpec,
    generate_chest_phantom,
    juxta_vascular_spec,
)

# Three acquisitions of different pixel spacing and slice thickness, and a noisy one.
PHANTOM_SPECS: dict[str, ChestPhantomSpec] = {
    "thin-0.7mm-1.25mm": ChestPhantomSpec(),
    "thick-0.9mm-2.5mm": juxta_vascular_spec(pixel_spacing_mm=0.9, slice_thickness_mm=2.5, slices=44, seed=3),
    "coarse-1.2mm-2mm": juxta_vascular_spec(pixel_spacing_mm=1.2, slice_thickness_mm=2.0, rows=200, columns=200,
                                            slices=60, noise_hu=40.0, seed=11),
}
NOISY_SPEC = juxta_vascular_spec(noise_hu=80.0, seed=7)


@dataclass(frozen=True)
class Detection:
    phantom: ChestPhantom
    datasets: list[Dataset]
    volume: VolumeInput
    result: EngineResult


@lru_cache(maxsize=8)
def detection_on(spec: ChestPhantomSpec) -> Detection:
    phantom = generate_chest_phantom(spec)
    datasets = phantom.datasets()
    volume = volume_from_datasets(datasets)
    return Detection(phantom=phantom, datasets=datasets, volume=volume, result=PulmonaryNoduleDetector().run(volume))
