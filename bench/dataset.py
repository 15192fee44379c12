"""The benchmark's data set: CT, MR and DX studies written once as Part 10 files into a cache folder.

At `--scale 1` it is about 3,000 instances in 26 studies, about 1.6 GB (docs/benchmarks.md "Targets"): 12 CT studies
(512×512 int16, two series each), 6 MR studies (256×256, four series each) and 8 DX studies
(2048×2560, two or three views). A smaller scale keeps every modality and fewer, shorter series.

Instances are built by the shared test factory (`tests/factories/dicom_factory.py`: make_ct_series,
make_mr_image, make_dx_image, to_part10_bytes), so pixels are its synthetic phantoms with noise (not
blank frames: a renderer or compressor sees real structure) and the IOD modules are its; this module
adds what a modality also writes (equipment, protocol, technique), plans the studies and patients,
and derives every UID from the seed, so a cached data set is the same on every run and machine.
Run from the repository root (the factory is imported as `tests.factories.dicom_factory`).

The cache holds one folder per (scale, seed) with a `manifest.json` listing every study, series and
instance; the benchmark reads only the manifest and the files it names.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

MANIFEST_VERSION = 5
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache"

# Full-scale composition (scale 1.0).
CT_STUDIES, MR_STUDIES, DX_STUDIES = 12, 6, 8
CT_SERIES = (("AXIAL 5.0 SOFT TISSUE", 5.0, "STANDARD", 48), ("AXIAL 1.25 LUNG", 1.25, "LUNG", 160))
MR_SERIES = (("AX T1 SE", 16), ("AX T2 FSE", 16), ("AX FLAIR", 16), ("AX DWI B1000", 16))
DX_VIEWS = ("PA", "LL", "AP")
TARGET_INSTANCES_AT_SCALE_1 = 3000

PATIENT_NAMES = (
    "DOE^JOHN", "DOE^JANE", "DOEBLER^ANNA", "SMITH^ROBERT", "GARCIA^MARIA", "NGUYEN^VAN",
    "MUELLER^KLAUS", "ROSSI^GIULIA", "KOWALSKI^PIOTR", "TANAKA^YUKI", "OKAFOR^CHIDI", "SILVA^JOAO",
    "JOHANSSON^ERIK", "DUBOIS^CLAIRE",
)


@dataclass
class InstanceEntry:
    sop_instance_uid: str
    path: str  # relative to the data set folder
    size: int
    number: int


@dataclass
class SeriesEntry:
    series_instance_uid: str
    modality: str
    number: int
    description: str
    instances: list[InstanceEntry] = field(default_factory=list)


@dataclass
class StudyEntry:
    study_instance_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    accession_number: str
    description: str
    series: list[SeriesEntry] = field(default_factory=list)

    @property
    def modalities(self) -> list[str]:
        return sorted({series.modality for series in self.series})

    @property
    def instance_count(self) -> int:
        return sum(len(series.instances) for series in self.series)


@dataclass
class BenchDataset:
    """The manifest of a generated data set."""

    root: Path
    scale: float
    seed: int
    studies: list[StudyEntry]

    def instances(self) -> Iterator[tuple[StudyEntry, SeriesEntry, InstanceEntry]]:
        for study in self.studies:
            for series in study.series:
                for instance in series.instances:
                    yield study, series, instance

    @property
    def instance_count(self) -> int:
        return sum(study.instance_count for study in self.studies)

    @property
    def total_bytes(self) -> int:
        return sum(instance.size for _, _, instance in self.instances())

    def path_of(self, instance: InstanceEntry) -> Path:
        return self.root / instance.path

    def summary(self) -> dict[str, object]:
        by_modality: dict[str, dict[str, int]] = {}
        for study in self.studies:
            for series in study.series:
                entry = by_modality.setdefault(series.modality, {"series": 0, "instances": 0, "bytes": 0})
                entry["series"] += 1
                entry["instances"] += len(series.instances)
                entry["bytes"] += sum(instance.size for instance in series.instances)
        return {
            "scale": self.scale, "seed": self.seed, "studies": len(self.studies),
            "patients": len({study.patient_id for study in self.studies}),
            "series": sum(len(study.series) for study in self.studies),
            "instances": self.instance_count, "bytes": self.total_bytes, "by_modality": by_modality,
            "folder": str(self.root),
        }


# --- plan ---------------------------------------------------------------------------------------------

@dataclass
class _SeriesPlan:
    study_index: int
    modality: str
    number: int
    description: str
    count: int
    slice_thickness: float = 0.0
    kernel: str = ""
    view: str = ""


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=[f"imaging-cloud-bench/{seed}", *map(str, parts)])


def _study_counts(scale: float) -> tuple[int, int, int]:
    studies = max(6, round((CT_STUDIES + MR_STUDIES + DX_STUDIES) * scale))
    total = CT_STUDIES + MR_STUDIES + DX_STUDIES
    ct = max(1, round(studies * CT_STUDIES / total))
    mr = max(1, round(studies * MR_STUDIES / total))
    dx = max(1, studies - ct - mr)
    return ct, mr, dx


def _plan(scale: float) -> list[list[_SeriesPlan]]:
    """Series (with instance counts) per study, sized so the total is about 3,000 × scale."""
    ct_count, mr_count, dx_count = _study_counts(scale)
    studies: list[list[_SeriesPlan]] = []
    kinds = ["CT"] * ct_count + ["MR"] * mr_count + ["DX"] * dx_count
    # Interleave modalities, so any prefix of the study list (and any patient) mixes them.
    order = sorted(range(len(kinds)), key=lambda i: (i % max(1, len(kinds) // 3), i))
    kinds = [kinds[i] for i in order]
    for index, kind in enumerate(kinds):
        variation = 0.85 + 0.3 * ((index * 7919) % 100) / 100  # deterministic 0.85–1.15
        if kind == "CT":
            studies.append([
                _SeriesPlan(index, "CT", number + 2, description, round(count * variation), thickness, kernel)
                for number, (description, thickness, kernel, count) in enumerate(CT_SERIES)
            ])
        elif kind == "MR":
            studies.append([
                _SeriesPlan(index, "MR", number + 1, description, round(count * variation))
                for number, (description, count) in enumerate(MR_SERIES)
            ])
        else:
            views = DX_VIEWS[: 3 if index % 3 == 0 else 2]
            studies.append([_SeriesPlan(index, "DX", number + 1, f"CHEST {view}", 1, view=view)
                            for number, view in enumerate(views)])
    dx_instances = sum(plan.count for study in studies for plan in study if plan.modality == "DX")
    variable = sum(plan.count for study in studies for plan in study if plan.modality != "DX")
    target = max(len(studies) * 2, round(TARGET_INSTANCES_AT_SCALE_1 * scale))
    factor = max(0.0, (target - dx_instances) / variable) if variable else 0.0
    for study in studies:
        for plan in study:
            if plan.modality != "DX":
                plan.count = max(2, round(plan.count * factor))
    return studies


# --- instances (built by the shared test factory, tests/factories/dicom_factory.py) ------------------

def _identifiers(study: StudyEntry, plan: _SeriesPlan, series_uid: str, frame_of_reference: str) -> dict[str, Any]:
    return {
        "patient_id": study.patient_id, "patient_name": study.patient_name,
        "patient_birth_date": study.patient_birth_date, "patient_sex": study.patient_sex,
        "issuer_of_patient_id": "BENCH-CLINIC", "study_instance_uid": study.study_instance_uid,
        "study_id": study.accession_number[-6:], "study_date": study.study_date, "study_time": study.study_time,
        "study_description": study.description, "accession_number": study.accession_number,
        "referring_physician_name": "WELBY^MARCUS^^DR", "institution_name": "Bench Primary Care Clinic",
        "manufacturer": MANUFACTURERS[plan.modality][0], "series_instance_uid": series_uid,
        "series_number": plan.number, "series_description": plan.description,
        "frame_of_reference_uid": frame_of_reference,
    }


MANUFACTURERS = {
    "CT": ("GE MEDICAL SYSTEMS", "Revolution EVO"),
    "MR": ("SIEMENS", "MAGNETOM Aera"),
    "DX": ("FUJIFILM Corporation", "FDR D-EVO II"),
}
MR_SEQUENCES = (  # (ScanningSequence, RepetitionTime, EchoTime, EchoTrainLength) per MR series
    ("SE", "500", "12", "1"), ("SE", "4000", "95", "16"), ("SE\\IR", "9000", "81", "16"), ("EP", "5200", "89", "1"),
)


def _add_acquisition_details(dataset: Dataset, study: StudyEntry, plan: _SeriesPlan, index: int) -> None:
    """What a modality writes beyond the IOD's required modules: equipment, protocol, technique."""
    manufacturer, model = MANUFACTURERS[plan.modality]
    dataset.ManufacturerModelName = model
    dataset.StationName = f"{plan.modality}01"
    dataset.SoftwareVersions = "bench-1.0"
    dataset.DeviceSerialNumber = f"{plan.modality}-0001"
    dataset.AcquisitionNumber = 1
    dataset.AcquisitionDate = study.study_date
    dataset.SeriesTime = dataset.AcquisitionTime = f"{study.study_time[:4]}{plan.number % 60:02d}"
    dataset.ContentTime = f"{study.study_time[:4]}{plan.number % 60:02d}.{index + 1:06d}"
    age = int(study.study_date[:4]) - int(study.patient_birth_date[:4])
    dataset.PatientAge = f"{age:03d}Y"
    if plan.modality == "CT":
        dataset.ProtocolName = "CHEST ABDOMEN PELVIS W CONTRAST"
        dataset.ContrastBolusAgent = "IOHEXOL 350"
        dataset.ConvolutionKernel = plan.kernel
        dataset.SpacingBetweenSlices = plan.slice_thickness
        dataset.DataCollectionDiameter = 500
        dataset.ReconstructionDiameter = 350
        dataset.GantryDetectorTilt = 0
        dataset.TableHeight = 165
        dataset.RotationDirection = "CW"
        dataset.ExposureTime = 600
        dataset.XRayTubeCurrent = 250 + index % 40
        dataset.Exposure = 150
        dataset.FilterType = "BODY FILTER"
        dataset.PatientPosition = "FFS"
    elif plan.modality == "MR":
        sequence, repetition, echo, train = MR_SEQUENCES[(plan.number - 1) % len(MR_SEQUENCES)]
        dataset.ProtocolName = "BRAIN ROUTINE"
        dataset.ScanningSequence = sequence.split("\\")
        dataset.SequenceVariant = ["SK", "SP"]
        dataset.ScanOptions = "PFP"
        dataset.RepetitionTime = repetition
        dataset.EchoTime = echo
        dataset.EchoTrainLength = train
        dataset.ImagingFrequency = "63.68"
        dataset.FlipAngle = "90"
        dataset.PatientPosition = "HFS"
    else:
        dataset.ProtocolName = f"CHEST {plan.view}"
        dataset.ViewPosition = plan.view
        dataset.ImageLaterality = "U"
        dataset.KVP = 125 if plan.view != "LL" else 110
        dataset.ExposureTime = 8
        dataset.XRayTubeCurrent = 320
        dataset.Exposure = 3
        dataset.DistanceSourceToDetector = 1800
        dataset.DistanceSourceToPatient = 1650
        dataset.PatientPosition = ""


def _write_series(job: tuple[Path, int, StudyEntry, _SeriesPlan]) -> SeriesEntry:
    from tests.factories.dicom_factory import make_ct_series, make_dx_image, make_mr_image, to_part10_bytes

    root, seed, study, plan = job
    series_uid = _uid(seed, study.study_instance_uid, "series", plan.number)
    frame_of_reference = _uid(seed, study.study_instance_uid, "for")
    pixel_seed = zlib.crc32(f"{seed}/{series_uid}".encode())
    identifiers = _identifiers(study, plan, series_uid, frame_of_reference)
    sop_uids = [_uid(seed, series_uid, "instance", number) for number in range(1, plan.count + 1)]
    if plan.modality == "CT":
        window = (-600.0, 1500.0) if plan.kernel == "LUNG" else (40.0, 400.0)
        datasets = make_ct_series(plan.count, rows=512, columns=512, first_slice_position=-400.0,
                                  slice_thickness=plan.slice_thickness, sop_instance_uids=sop_uids, seed=pixel_seed,
                                  body_part_examined="CHEST", **identifiers)
        for dataset in datasets:
            dataset.WindowCenter, dataset.WindowWidth = window
    elif plan.modality == "MR":
        datasets = [
            make_mr_image(rows=256, columns=256, slice_position=-60.0 + index * 6.0, slice_thickness=5.0,
                          bits_stored=12, window_center=600.0, window_width=1200.0, seed=pixel_seed + index,
                          sop_instance_uid=sop_uids[index], instance_number=index + 1, body_part_examined="BRAIN",
                          **identifiers)
            for index in range(plan.count)
        ]
    else:
        datasets = [
            make_dx_image(rows=2560, columns=2048, bits_stored=14, window_center=8192.0, window_width=16384.0,
                          seed=pixel_seed + index, sop_instance_uid=sop_uids[index], instance_number=index + 1,
                          body_part_examined="CHEST", **identifiers)
            for index in range(plan.count)
        ]
    entry = SeriesEntry(series_uid, plan.modality, plan.number, plan.description)
    folder = Path(study.study_instance_uid) / series_uid
    for index, dataset in enumerate(datasets):
        _add_acquisition_details(dataset, study, plan, index)
        relative = folder / f"{index + 1:05d}.dcm"
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = to_part10_bytes(dataset)
        target.with_suffix(".tmp").write_bytes(data)
        os.replace(target.with_suffix(".tmp"), target)
        entry.instances.append(InstanceEntry(sop_uids[index], str(relative), len(data), index + 1))
    return entry


# --- cache ----------------------------------------------------------------------------------------------

def _studies_for(scale: float, seed: int) -> tuple[list[StudyEntry], list[list[_SeriesPlan]]]:
    plans = _plan(scale)
    patients = max(5, min(len(PATIENT_NAMES), round(len(PATIENT_NAMES) * len(plans) / 26)))
    studies = []
    start = date(2019, 1, 1)
    for index, study_plans in enumerate(plans):
        patient = index % patients
        modality = study_plans[0].modality
        # Dates spread over 2019–2025, the same for any scale (a function of the study index).
        study_date = start + timedelta(days=(index * 977 + 131) % (7 * 365))
        studies.append(StudyEntry(
            study_instance_uid=_uid(seed, "study", index),
            patient_id=f"BENCH{patient + 1:05d}",
            patient_name=PATIENT_NAMES[patient],
            patient_birth_date=f"{1940 + (patient * 7) % 60}{1 + patient % 12:02d}{1 + (patient * 5) % 28:02d}",
            patient_sex="F" if patient % 2 else "M",
            study_date=study_date.strftime("%Y%m%d"),
            study_time=f"{8 + index % 10:02d}{(index * 13) % 60:02d}00",
            accession_number=f"ACC{seed:03d}{index + 1:06d}",
            description={"CT": "CT CHEST ABDOMEN PELVIS W CONTRAST", "MR": "MR BRAIN WO CONTRAST",
                         "DX": "XR CHEST 2 VIEWS"}[modality],
        ))
    return studies, plans


def folder_for(cache: Path, scale: float, seed: int) -> Path:
    return cache / f"dataset-v{MANIFEST_VERSION}-scale{scale:g}-seed{seed}"


def load(folder: Path) -> BenchDataset | None:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    if data.get("version") != MANIFEST_VERSION:
        return None
    studies = []
    for study in data["studies"]:
        series_list = [
            SeriesEntry(series["series_instance_uid"], series["modality"], series["number"], series["description"],
                        [InstanceEntry(**instance) for instance in series["instances"]])
            for series in study.pop("series")
        ]
        studies.append(StudyEntry(**study, series=series_list))
    return BenchDataset(folder, data["scale"], data["seed"], studies)


def ensure(*, cache: Path = DEFAULT_CACHE, scale: float = 1.0, seed: int = 1, workers: int | None = None,
           log=print) -> BenchDataset:  # type: ignore[no-untyped-def]
    """The data set for (scale, seed), generated into the cache the first time it is asked for."""
    folder = folder_for(cache, scale, seed)
    existing = load(folder)
    if existing is not None:
        return existing
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted generation: start again
    folder.mkdir(parents=True)
    studies, plans = _studies_for(scale, seed)
    jobs = [(folder, seed, study, plan) for study, study_plans in zip(studies, plans, strict=True)
            for plan in study_plans]
    log(f"generating data set (scale {scale:g}, {len(studies)} studies, "
        f"{sum(plan.count for _, _, _, plan in jobs)} instances) into {folder} ...")
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for (_, _, study, _), series in zip(jobs, pool.map(_write_series, jobs), strict=True):
            study.series.append(series)
    manifest = {"version": MANIFEST_VERSION, "scale": scale, "seed": seed,
                "studies": [asdict(study) for study in studies]}
    (folder / "manifest.json.tmp").write_text(json.dumps(manifest))
    os.replace(folder / "manifest.json.tmp", folder / "manifest.json")
    dataset = load(folder)
    assert dataset is not None
    return dataset


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Generate (or show) the benchmark data set.")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    arguments = parser.parse_args()
    print(json.dumps(ensure(cache=arguments.cache, scale=arguments.scale, seed=arguments.seed).summary(), indent=2))
