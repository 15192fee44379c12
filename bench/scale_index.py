"""QIDO scale mode: fill the platform's archive index to 10,000 studies / 1,000,000 instances.

Sending a million instances through STOW would take hours and measure ingest, not queries, so the
index is filled directly with synthetic index rows (no objects behind them: QIDO reads only the
index). The rows look like a clinic's archive: ~3 studies per patient over 2015–2025, a modality
mix (CT and MR with hundreds of instances, DX/CR with two or three, US, MG, PT), about 1% of
patients named DOE*, and instance counts scaled so the total is exactly the one asked for.

Two halves:
- `synthetic_index(...)` (plain Python, no Django) yields one record per study with its series and
  the SOP Instance UIDs of every instance, attributes named by DICOM keyword;
- `python -m bench.scale_index --load` runs inside the platform's Django environment (started by
  `fill_platform`, with the benchmark's DATABASE_URL) and hands the records to the archive's bulk
  index loader in the tenant's schema.

The loader is the archive's own `index_bulk_load` (apps.archive.services.bulk): the same batch
indexer, SQL, counters and lock as STOW-RS, one transaction per chunk of studies.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

UID_ROOT = "1.2.826.0.1.3680043.10.1456.9"  # synthetic index rows of the bench (never real objects)
SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1", "CR": "1.2.840.10008.5.1.4.1.1.1",
    "US": "1.2.840.10008.5.1.4.1.1.6.1", "MG": "1.2.840.10008.5.1.4.1.1.1.2",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
}
# modality: (share of studies, series per study, relative instances per series)
MODALITY_MIX = {
    "CT": (0.30, 3, 110), "MR": (0.18, 5, 40), "DX": (0.22, 2, 1), "CR": (0.10, 2, 1),
    "US": (0.10, 1, 30), "MG": (0.06, 4, 1), "PT": (0.04, 2, 250),
}
SURNAMES = (
    "SMITH", "GARCIA", "NGUYEN", "MUELLER", "ROSSI", "KOWALSKI", "TANAKA", "OKAFOR", "SILVA", "JOHANSSON",
    "DUBOIS", "PATEL", "KIM", "IVANOVA", "HERNANDEZ", "MARTIN", "BROWN", "WILSON", "TAYLOR", "ANDERSEN",
    "LOPEZ", "SATO", "CHEN", "WANG", "MOHAMMED", "KHAN", "SCHMIDT", "FISCHER", "MORENO", "COSTA",
)
GIVEN_NAMES = ("JOHN", "JANE", "MARIA", "AHMED", "YUKI", "ANNA", "PIOTR", "LUCIA", "ERIK", "CLAIRE", "WEI", "SARA")


@dataclass
class SeriesRecord:
    series_instance_uid: str
    modality: str
    series_number: int
    series_description: str
    body_part_examined: str
    sop_class_uid: str
    sop_instance_uids: list[str] = field(default_factory=list)


@dataclass
class StudyRecord:
    """One study of the synthetic index; attributes by DICOM keyword (PS3.6) in `attributes()`."""

    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_instance_uid: str
    study_date: str
    study_time: str
    accession_number: str
    study_description: str
    referring_physician_name: str
    series: list[SeriesRecord] = field(default_factory=list)

    def attributes(self) -> dict[str, str]:
        return {
            "PatientID": self.patient_id, "PatientName": self.patient_name, "PatientBirthDate": self.patient_birth_date,
            "PatientSex": self.patient_sex, "StudyInstanceUID": self.study_instance_uid, "StudyDate": self.study_date,
            "StudyTime": self.study_time, "AccessionNumber": self.accession_number,
            "StudyDescription": self.study_description, "ReferringPhysicianName": self.referring_physician_name,
        }

    def instance_datasets(self) -> Iterator[dict[str, Any]]:
        """Every instance as a flat keyword → value mapping, as an indexer reads it from a header."""
        study = self.attributes()
        for series in self.series:
            for number, sop_instance_uid in enumerate(series.sop_instance_uids, start=1):
                yield {
                    **study, "SeriesInstanceUID": series.series_instance_uid, "Modality": series.modality,
                    "SeriesNumber": series.series_number, "SeriesDescription": series.series_description,
                    "BodyPartExamined": series.body_part_examined, "SOPClassUID": series.sop_class_uid,
                    "SOPInstanceUID": sop_instance_uid, "InstanceNumber": number,
                    "TransferSyntaxUID": "1.2.840.10008.1.2.1",
                }


def _instance_budget(rng: random.Random, modalities: list[str], total_instances: int) -> list[list[int]]:
    """Instances per series for every study, summing exactly to `total_instances`."""
    weights = []
    for modality in modalities:
        _, series_count, per_series = MODALITY_MIX[modality]
        weights.append([per_series * rng.uniform(0.6, 1.4) for _ in range(series_count)])
    scale = total_instances / sum(sum(study) for study in weights)
    counts = [[max(1, round(weight * scale)) for weight in study] for study in weights]
    difference = total_instances - sum(sum(study) for study in counts)
    # Spread the rounding difference over the largest series (CT/PT), one instance at a time.
    largest = sorted(((count, s, n) for s, study in enumerate(counts) for n, count in enumerate(study)), reverse=True)
    index = 0
    while difference and largest:
        _, s, n = largest[index % len(largest)]
        step = 1 if difference > 0 else -1
        if counts[s][n] + step >= 1:
            counts[s][n] += step
            difference -= step
        index += 1
    return counts


def synthetic_index(*, studies: int, instances: int, seed: int = 1) -> Iterator[StudyRecord]:
    rng = random.Random(seed)
    names = list(MODALITY_MIX)
    modalities = rng.choices(names, weights=[MODALITY_MIX[name][0] for name in names], k=studies)
    budget = _instance_budget(rng, modalities, instances)
    patients = max(1, studies // 3)
    start = date(2015, 1, 1)
    for index, (modality, counts) in enumerate(zip(modalities, budget, strict=True)):
        patient = rng.randrange(patients)
        surname = "DOE" if patient % 100 == 0 else SURNAMES[patient % len(SURNAMES)]
        study_uid = f"{UID_ROOT}.{seed}.{index + 1}"
        record = StudyRecord(
            patient_id=f"SCALE{patient:07d}", patient_name=f"{surname}^{GIVEN_NAMES[patient % len(GIVEN_NAMES)]}",
            patient_birth_date=f"{1935 + patient % 80}{1 + patient % 12:02d}{1 + patient % 28:02d}",
            patient_sex="F" if patient % 2 else "M", study_instance_uid=study_uid,
            study_date=(start + timedelta(days=rng.randrange(11 * 365))).strftime("%Y%m%d"),
            study_time=f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
            accession_number=f"SCA{index + 1:09d}", study_description=f"{modality} ROUTINE",
            referring_physician_name="WELBY^MARCUS",
        )
        for number, count in enumerate(counts, start=1):
            series_uid = f"{study_uid}.{number}"
            record.series.append(SeriesRecord(
                series_uid, modality, number, f"{modality} SERIES {number}", "CHEST", SOP_CLASSES[modality],
                [f"{series_uid}.{instance}" for instance in range(1, count + 1)],
            ))
        yield record


# --- the Django side ------------------------------------------------------------------------------------

def _bulk_loader() -> Callable[..., Any]:
    from apps.archive.services.bulk import index_bulk_load

    return index_bulk_load


def _load_inside_django(*, tenant_slug: str, studies: int, instances: int, seed: int, chunk: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection
    from django_tenants.utils import schema_context

    from tenants.models import Tenant

    loader = _bulk_loader()
    tenant = Tenant.objects.get(slug=tenant_slug)
    loaded_studies = loaded_instances = 0
    with schema_context(tenant.schema_name):
        connection.tenant = tenant
        batch: list[StudyRecord] = []
        for record in synthetic_index(studies=studies, instances=instances, seed=seed):
            batch.append(record)
            if len(batch) >= chunk:
                loader(datasets=[dataset for study in batch for dataset in study.instance_datasets()])
                loaded_studies += len(batch)
                loaded_instances += sum(len(series.sop_instance_uids) for study in batch for series in study.series)
                batch = []
        if batch:
            loader(datasets=[dataset for study in batch for dataset in study.instance_datasets()])
            loaded_studies += len(batch)
            loaded_instances += sum(len(series.sop_instance_uids) for study in batch for series in study.series)
    return {"studies": loaded_studies, "instances": loaded_instances, "loader": f"{loader.__module__}.{loader.__name__}"}


def check_loader(platform_peer: Any) -> str:
    """The archive's bulk loader this checkout has (raises with the reason if there is none)."""
    from bench.platform_peer import REPO_ROOT

    result = subprocess.run([sys.executable, "-m", "bench.scale_index", "--check-loader"], cwd=REPO_ROOT,
                            env=platform_peer.environment(), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError((result.stderr.strip().splitlines() or ["scale loader check failed"])[-1])
    return result.stdout.strip()


def fill_platform(platform_peer: Any, *, studies: int, instances: int, seed: int,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the loader in a subprocess with the platform's environment (its database and settings)."""
    from bench.platform_peer import REPO_ROOT, TENANT_SLUG

    result = subprocess.run(
        [sys.executable, "-m", "bench.scale_index", "--load", "--tenant", TENANT_SLUG, "--studies", str(studies),
         "--instances", str(instances), "--seed", str(seed)],
        cwd=REPO_ROOT, env=platform_peer.environment(), capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scale loader failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Synthetic archive index for the QIDO scale benchmark.")
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load", action="store_true", help="load into the platform (needs DJANGO_SETTINGS_MODULE)")
    parser.add_argument("--tenant", default="bench-clinic")
    parser.add_argument("--chunk", type=int, default=200, help="studies per loader call")
    parser.add_argument("--check-loader", action="store_true", help="only say which bulk loader would be used")
    arguments = parser.parse_args()
    if arguments.check_loader:
        import django

        django.setup()
        loader = _bulk_loader()
        print(f"{loader.__module__}.{loader.__name__}")
    elif arguments.load:
        print(json.dumps(_load_inside_django(tenant_slug=arguments.tenant, studies=arguments.studies,
                                             instances=arguments.instances, seed=arguments.seed, chunk=arguments.chunk)))
    else:
        summary: dict[str, Any] = {"studies": 0, "instances": 0, "by_modality": {}, "doe_studies": 0}
        for record in synthetic_index(studies=arguments.studies, instances=arguments.instances, seed=arguments.seed):
            count = sum(len(series.sop_instance_uids) for series in record.series)
            summary["studies"] += 1
            summary["instances"] += count
            summary["by_modality"][record.series[0].modality] = summary["by_modality"].get(record.series[0].modality, 0) + 1
            summary["doe_studies"] += record.patient_name.startswith("DOE")
        print(json.dumps(summary, indent=2))
