"""Helpers that make DICOMweb tests read like sentences: build studies, send them, read answers.

Every study built here gets fresh UIDs and a fresh Patient ID, because the test database keeps
committed data between tests and runs.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import requests
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.factories.dicom_factory import make_ct_series, make_dx_image, make_mr_image, to_part10_bytes

DICOM_JSON = "application/dicom+json"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"
REFERENCED_SOP_INSTANCE_UID = "00081155"
RETRIEVE_URL = "00081190"


def unique_patient_id(prefix: str = "PAT") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12].upper()}"


@dataclass
class Study:
    """A generated study: its UIDs and the Part 10 bytes of each instance, in order."""

    study_instance_uid: str
    patient_id: str
    files: list[bytes]
    datasets: list[Dataset]

    @property
    def series_instance_uids(self) -> list[str]:
        return list(dict.fromkeys(str(dataset.SeriesInstanceUID) for dataset in self.datasets))

    @property
    def sop_instance_uids(self) -> list[str]:
        return [str(dataset.SOPInstanceUID) for dataset in self.datasets]


def ct_study(slices: int = 3, *, size: int = 64, **identifiers: Any) -> Study:
    identifiers.setdefault("patient_id", unique_patient_id())
    identifiers.setdefault("study_instance_uid", generate_uid())
    datasets = make_ct_series(slices, rows=size, columns=size, **identifiers)
    return Study(identifiers["study_instance_uid"], identifiers["patient_id"], [to_part10_bytes(d) for d in datasets],
                 datasets)


def mixed_study(**identifiers: Any) -> Study:
    """Two series in one study: a 3-slice CT and an MR image."""
    identifiers.setdefault("patient_id", unique_patient_id())
    identifiers.setdefault("study_instance_uid", generate_uid())
    ct = make_ct_series(3, rows=64, columns=64, series_number=1, **identifiers)
    mr = make_mr_image(rows=64, columns=64, series_number=2, **identifiers)
    datasets = [*ct, mr]
    return Study(identifiers["study_instance_uid"], identifiers["patient_id"], [to_part10_bytes(d) for d in datasets],
                 datasets)


def dx_study(**identifiers: Any) -> Study:
    identifiers.setdefault("patient_id", unique_patient_id())
    identifiers.setdefault("study_instance_uid", generate_uid())
    dataset = make_dx_image(rows=128, columns=128, **identifiers)
    return Study(identifiers["study_instance_uid"], identifiers["patient_id"], [to_part10_bytes(dataset)], [dataset])


def instance_path(study: Study, index: int = 0) -> str:
    """The WADO-RS path of one instance of a stored study, under the tenant's root."""
    dataset = study.datasets[index]
    return (f"/dicomweb/studies/{study.study_instance_uid}/series/{dataset.SeriesInstanceUID}"
            f"/instances/{dataset.SOPInstanceUID}")


def sample_file_with_new_uids(name: str, *, patient_id: str | None = None, study_instance_uid: str | None = None) -> bytes:
    """One of pydicom's bundled files with fresh UIDs (its pixel data bytes untouched, in its own
    transfer syntax), so each test stores it anew."""
    dataset = pydicom.dcmread(get_testdata_file(name))
    dataset.StudyInstanceUID = study_instance_uid or generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.PatientID = patient_id or unique_patient_id("SAMPLE")
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def sample_bytes(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()  # type: ignore[arg-type]


# --- multipart ----------------------------------------------------------------------------------------


def multipart_body(parts: Sequence[bytes], *, boundary: str | None = None,
                   part_type: str = "application/dicom") -> tuple[bytes, str]:
    boundary = boundary or f"test-{uuid.uuid4().hex}"
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode(), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(http: requests.Session, files: Sequence[bytes], *, study: str | None = None, **kwargs: Any) -> requests.Response:
    body, content_type = multipart_body(files)
    path = f"/dicomweb/studies/{study}" if study else "/dicomweb/studies"
    headers = {"Content-Type": content_type, "Accept": DICOM_JSON, **kwargs.pop("headers", {})}
    return http.post(path, data=body, headers=headers, **kwargs)


def referenced_uids(response: requests.Response) -> list[str]:
    document = response.json()
    return [item[REFERENCED_SOP_INSTANCE_UID]["Value"][0]
            for item in document.get(REFERENCED_SOP_SEQUENCE, {}).get("Value", [])]


def failures(response: requests.Response) -> list[tuple[str, int]]:
    """(SOP Instance UID or '', failure reason) of each failed instance of a STOW-RS answer."""
    document = response.json()
    result = []
    for item in document.get(FAILED_SOP_SEQUENCE, {}).get("Value", []):
        uid = item.get(REFERENCED_SOP_INSTANCE_UID, {}).get("Value", [""])[0]
        result.append((uid, item[FAILURE_REASON]["Value"][0]))
    return result


def parse_multipart(response: requests.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related answer: (headers with lowercase names, content)."""
    content_type = response.headers["Content-Type"]
    boundary = next(
        item.split("=", 1)[1].strip().strip('"') for item in content_type.split(";") if item.strip().startswith("boundary=")
    )
    delimiter = b"--" + boundary.encode()
    body = response.content
    pieces = body.split(b"\r\n" + delimiter)
    first = pieces[0]
    assert first.startswith(delimiter), "the body must start with the boundary"
    pieces[0] = first[len(delimiter):]
    parts = []
    for piece in pieces:
        if piece.startswith(b"--"):
            break
        head, _, content = piece.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts


def attribute(result: dict[str, Any], tag: str) -> Any:
    """The first value of an attribute in a DICOM JSON object (None when absent or empty)."""
    values = result.get(tag, {}).get("Value")
    return values[0] if values else None


def qido(http: requests.Session, path: str, params: Any = None, **kwargs: Any) -> requests.Response:
    headers = {"Accept": DICOM_JSON, **kwargs.pop("headers", {})}
    return http.get(f"/dicomweb{path}", params=params, headers=headers, **kwargs)


def json_body(response: requests.Response) -> Any:
    return json.loads(response.content) if response.content else None


def dicomweb_client(platform: Any, tenant_key: str, role: str) -> Any:
    """A dicomweb-client DICOMwebClient for one tenant and role, as a viewer would configure it.

    The session carries the tenant's Host header and the role's Bearer token. dicomweb-client sets
    `Host` itself from its URL on every request, so its `host` is pointed at the tenant's domain;
    its chunk size is raised because the test server (Django's) cannot read chunked request bodies.
    """
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=platform.url("/dicomweb"), session=platform.http(tenant_key, role), chunk_size=2**31)
    client.host = platform.host(tenant_key)
    return client
