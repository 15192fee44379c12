"""Helpers that make the AI job tests read like sentences: store a chest phantom, start a job, wait."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from apps.ai.engines.base import EngineResult, volume_from_datasets
from apps.ai.engines.pulmonary_nodule import ENGINE_NAME, PulmonaryNoduleDetector
from apps.ai.models import AIJob
from tests.factories.chest_phantom import ChestPhantom, generate_chest_phantom, juxta_vascular_spec
from tests.factories.dicom_factory import to_part10_bytes
from tests.support.dicomweb import qido, stow
from tests.support.platform import wait_until

NODULE_ENGINE = ENGINE_NAME
JOBS = "/api/v1/ai/jobs/"
# A small acquisition (200×200×60 at 1.2 mm × 2 mm) the detector handles in about a second.
SMALL_CHEST_SPEC = juxta_vascular_spec(pixel_spacing_mm=1.2, slice_thickness_mm=2.0, rows=200, columns=200,
                                       slices=60, noise_hu=20.0, seed=5)


@dataclass(frozen=True)
class StoredPhantom:
    phantom: ChestPhantom
    datasets: list[Dataset]

    @property
    def study_instance_uid(self) -> str:
        return self.phantom.study_instance_uid

    @property
    def series_instance_uid(self) -> str:
        return self.phantom.series_instance_uid

    def detect(self) -> EngineResult:
        """What the detector finds when run here, in-process, on the same slices."""
        return PulmonaryNoduleDetector().run(volume_from_datasets(self.datasets))


def store_chest_phantom(platform: Any, tenant_key: str, role: str, *, study_description: str = "CT CHEST") -> StoredPhantom:
    phantom = generate_chest_phantom(SMALL_CHEST_SPEC)
    datasets = phantom.datasets()
    for dataset in datasets:
        dataset.StudyDescription = study_description
    response = stow(platform.http(tenant_key, role), [to_part10_bytes(dataset) for dataset in datasets])
    assert response.status_code == 200, response.text
    return StoredPhantom(phantom=phantom, datasets=datasets)


def job_of(platform: Any, tenant_key: str, job_id: str) -> AIJob:
    with platform.schema(tenant_key):
        return AIJob.objects.get(pk=job_id)


def wait_for_job(platform: Any, tenant_key: str, job_id: str, *, states: tuple[str, ...] = ("succeeded", "failed",
                 "cancelled"), timeout: float = 120.0) -> AIJob:
    def finished() -> AIJob | None:
        job = job_of(platform, tenant_key, job_id)
        return job if job.state in states else None

    return wait_until(finished, timeout=timeout, message=f"AI job {job_id} to reach {states}")


def series_modalities(platform: Any, tenant_key: str, role: str, study_instance_uid: str) -> list[str]:
    response = qido(platform.http(tenant_key, role), f"/studies/{study_instance_uid}/series")
    assert response.status_code == 200, response.text
    return sorted(item["00080060"]["Value"][0] for item in response.json())


FINISHED_RUN = re.compile(r"ai_job_run\[[^\]]+\] succeeded in [0-9.e-]+s: '(\w+)'")


def finished_runs(log: str) -> list[str]:
    """Outcomes of the ai_job_run tasks a worker has finished, in order."""
    return FINISHED_RUN.findall(log)
