"""STOW-RS when the filesystem backend's disk fills up half way through a request: the instances
that no longer fit fail with Failure Reason 0xA700 (out of resources, PS3.4 §B.2.3), the ones
already written are stored, indexed and read back byte for byte, and nothing partial is left.
The disk is a real 1 MiB tmpfs mounted for the test."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from tests.support.dicomweb import ct_study, stow

FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILURE_REASON = "00081197"
REFERENCED_SOP_INSTANCE_UID = "00081155"
OUT_OF_RESOURCES = 0xA700


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    root = tmp_path / "small-disk"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], check=True)
    try:
        with override_settings(STORAGE_BACKEND="filesystem", STORAGE_ROOT=str(root)):
            yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_instances_that_do_not_fit_fail_with_a700_and_the_rest_is_stored(platform, small_disk):
    study = ct_study(12, size=256)  # about 130 KiB each: some fit in 1 MiB, the rest do not
    http = platform.http("clinic_a", "technologist")
    answer = stow(http, study.files)
    body = answer.json()
    failed = body[FAILED_SOP_SEQUENCE]["Value"]
    stored = body[REFERENCED_SOP_SEQUENCE]["Value"]

    assert answer.status_code == 202, answer.text
    assert failed and stored
    assert {item[FAILURE_REASON]["Value"][0] for item in failed} == {OUT_OF_RESOURCES}
    sent = {dataset.SOPInstanceUID: hashlib.sha256(data).hexdigest()
            for dataset, data in zip(study.datasets, study.files, strict=True)}
    for item in stored:
        sop = item[REFERENCED_SOP_INSTANCE_UID]["Value"][0]
        dataset = next(d for d in study.datasets if d.SOPInstanceUID == sop)
        read = http.get(f"/dicomweb/studies/{study.study_instance_uid}/series/{dataset.SeriesInstanceUID}"
                        f"/instances/{sop}", headers={"Accept": "application/dicom; transfer-syntax=*"})
        assert read.status_code == 200
        assert hashlib.sha256(read.content).hexdigest() == sent[sop]
    leftovers = [path for path in small_disk.rglob(".upload-*")]
    assert leftovers == []
