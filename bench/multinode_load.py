"""The multi-node benchmark's client side: fresh instances, the bounded load, and the final check.

- `InstanceMaker`: CT (512×512) and MR (256×256) series built once by the shared test factory
  (`tests/factories/dicom_factory.py`, as bench.dataset does), then copied with new Study, Series
  and SOP Instance UIDs for every batch, so each STOW-RS request is a new series (and every few
  batches a new study) without rendering new phantoms on the shared cores.
- `LoadClient`: one thread, one HTTP session through the load balancer; in a loop it stores a batch
  (STOW-RS), lists a stored series (QIDO-RS) and retrieves a stored instance (WADO-RS), and records
  every answer (`RequestRecord`) and every instance the server said it stored (`AcceptedInstance`).
- `verify_accepted`: after the load, every accepted instance must come back byte-identical through
  the load balancer (SHA-256 of the Part 10 bytes sent against those WADO-RS returns as stored,
  `transfer-syntax=*`), and QIDO-RS must list it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import requests
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from requests.adapters import HTTPAdapter

from bench.client import DICOM_JSON, REFERENCED_SOP_SEQUENCE, stow_body

if TYPE_CHECKING:
    from tests.factories.dicom_factory import DicomIdentifiers

SOP_INSTANCE_UID_TAG = "00080018"
REFERENCED_SOP_INSTANCE_UID_TAG = "00081155"
SINGLE_INSTANCE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
REQUEST_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class AcceptedInstance:
    """An instance a STOW-RS answer (200/202) listed in its ReferencedSOPSequence (PS3.18 §10.5.3)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sha256: str


@dataclass(frozen=True)
class RequestRecord:
    kind: str  # "stow", "qido" or "wado"
    started: float  # seconds since the load began
    seconds: float
    status: int  # 0 when no HTTP answer came (connection reset, timeout)
    ok: bool
    error: str = ""


# --- instances ----------------------------------------------------------------------------------------

@dataclass
class _Template:
    modality: str
    datasets: list[Dataset]


class InstanceMaker:
    """New series of realistic instances on demand: templates built once, re-identified per batch."""

    def __init__(self, *, batch_size: int, seed: int) -> None:
        from tests.factories.dicom_factory import make_ct_series, make_mr_image

        self.batch_size = batch_size
        common: DicomIdentifiers = {
            "patient_name": "MULTINODE^BENCH", "issuer_of_patient_id": "BENCH-CLINIC",
            "institution_name": "Bench Primary Care Clinic", "referring_physician_name": "WELBY^MARCUS^^DR",
        }
        ct_identifiers: DicomIdentifiers = {**common, "body_part_examined": "CHEST",
                                            "series_description": "AXIAL 2.5 SOFT TISSUE"}
        ct = make_ct_series(batch_size, rows=512, columns=512, slice_thickness=2.5, seed=seed, **ct_identifiers)
        mr = []
        for index in range(batch_size):
            mr_identifiers: DicomIdentifiers = {**common, "body_part_examined": "BRAIN",
                                                "series_description": "AX T2 FSE", "instance_number": index + 1}
            mr.append(make_mr_image(rows=256, columns=256, slice_position=index * 5.0, bits_stored=12,
                                    window_center=600.0, window_width=1200.0, seed=seed + 100 + index,
                                    **mr_identifiers))
        self._templates = [_Template("CT", ct), _Template("MR", mr)]
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def series(self, *, study_instance_uid: str, patient_id: str,
               modality_index: int) -> tuple[str, list[tuple[str, bytes]]]:
        """One new series in the given study: its UID, and (SOP Instance UID, Part 10 bytes) per instance."""
        from tests.factories.dicom_factory import to_part10_bytes

        template = self._templates[modality_index % len(self._templates)]
        with self._lock:
            series_number = next(self._numbers)
        series_instance_uid: str = generate_uid()
        frame_of_reference_uid: str = generate_uid()
        instances = []
        for source in template.datasets:
            dataset = copy.deepcopy(source)
            sop_instance_uid = generate_uid()
            dataset.StudyInstanceUID = study_instance_uid
            dataset.SeriesInstanceUID = series_instance_uid
            dataset.FrameOfReferenceUID = frame_of_reference_uid
            dataset.SOPInstanceUID = sop_instance_uid
            dataset.file_meta.MediaStorageSOPInstanceUID = sop_instance_uid
            dataset.SeriesNumber = series_number
            dataset.PatientID = patient_id
            dataset.AccessionNumber = f"MN{series_number:08d}"[:16]
            instances.append((str(sop_instance_uid), to_part10_bytes(dataset)))
        return series_instance_uid, instances


# --- the load ---------------------------------------------------------------------------------------

def new_session(headers: dict[str, str]) -> requests.Session:
    session = requests.Session()
    session.headers.update({"Accept-Encoding": "identity", "User-Agent": "imaging-cloud-bench-multinode/1", **headers})
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
    return session


def _referenced_sop_uids(content: bytes) -> list[str]:
    answer = json.loads(content) if content else {}
    items = answer.get(REFERENCED_SOP_SEQUENCE, {}).get("Value", [])
    return [item[REFERENCED_SOP_INSTANCE_UID_TAG]["Value"][0] for item in items]


def single_part(response: requests.Response) -> bytes:
    """The body of the one part of a multipart/related answer (PS3.18 §8.6.1.2)."""
    content_type = response.headers.get("Content-Type", "")
    boundary = next((value.strip().strip('"') for key, _, value in
                     (parameter.strip().partition("=") for parameter in content_type.split(";"))
                     if key.lower() == "boundary"), "")
    if not boundary:
        raise ValueError(f"no multipart boundary in {content_type!r}")
    body = response.content
    delimiter = b"--" + boundary.encode()
    start = body.index(delimiter) + len(delimiter)
    start = body.index(b"\r\n\r\n", start) + 4
    end = body.index(b"\r\n" + delimiter, start)
    return body[start:end]


@dataclass
class LoadState:
    """What every client thread shares: the records, the accepted instances, the clock and the stop flag."""

    started: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    records: list[RequestRecord] = field(default_factory=list)
    accepted: dict[str, AcceptedInstance] = field(default_factory=dict)
    sent_not_accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self) -> None:
        """Start the clock now and forget the warm-up's records (its accepted instances are kept and checked)."""
        with self.lock:
            self.records.clear()
            self.started = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.started

    def record(self, record: RequestRecord) -> None:
        with self.lock:
            self.records.append(record)

    def accept(self, instances: list[AcceptedInstance], *, sent: int) -> None:
        with self.lock:
            for instance in instances:
                self.accepted[instance.sop_instance_uid] = instance
            self.sent_not_accepted += sent - len(instances)

    def accepted_series(self) -> list[tuple[str, str, list[AcceptedInstance]]]:
        with self.lock:
            by_series: dict[tuple[str, str], list[AcceptedInstance]] = {}
            for instance in self.accepted.values():
                by_series.setdefault((instance.study_instance_uid, instance.series_instance_uid), []).append(instance)
        return [(study, series, instances) for (study, series), instances in by_series.items()]


class LoadClient:
    """One client thread: STOW a new series, QIDO a stored series, WADO a stored instance, repeat."""

    def __init__(self, number: int, *, base_url: str, headers: dict[str, str], maker: InstanceMaker,
                 state: LoadState, series_per_study: int, pause_seconds: float) -> None:
        self.number = number
        self.service_root = base_url + "/dicomweb"
        self.session = new_session(headers)
        self.maker = maker
        self.state = state
        self.series_per_study = series_per_study
        self.pause_seconds = pause_seconds
        self.random = random.Random(number)
        self.batches = 0
        self.study_instance_uid = ""
        self.patient_id = ""

    def run(self) -> None:
        while not self.state.stop.is_set():
            self.round()
            self.state.stop.wait(self.pause_seconds)

    def round(self) -> None:
        """STOW a new series (a new study every `series_per_study` batches), then one QIDO and one WADO."""
        if self.batches % self.series_per_study == 0:
            self.study_instance_uid = generate_uid()
            self.patient_id = f"MN{self.number:02d}{self.batches:06d}"
        self.stow(self.study_instance_uid, self.patient_id, self.batches)
        self.batches += 1
        self.qido()
        self.wado()

    def _timed(self, kind: str, send: Callable[[], requests.Response],
               judge: Callable[[requests.Response], str]) -> requests.Response | None:
        started = self.state.now()
        try:
            response = send()
        except requests.RequestException as failure:
            self.state.record(RequestRecord(kind, started, self.state.now() - started, 0, False,
                                            f"{type(failure).__name__}: {failure}"[:300]))
            return None
        try:
            error = judge(response)
        except (ValueError, KeyError, IndexError, TypeError) as failure:
            error = f"unreadable answer: {failure}"
        self.state.record(RequestRecord(kind, started, self.state.now() - started, response.status_code,
                                        not error, error))
        return response

    def stow(self, study_instance_uid: str, patient_id: str, batch: int) -> None:
        series_instance_uid, instances = self.maker.series(
            study_instance_uid=study_instance_uid, patient_id=patient_id, modality_index=batch // self.series_per_study)
        body = stow_body([data for _, data in instances])
        hashes = {uid: hashlib.sha256(data).hexdigest() for uid, data in instances}
        accepted: list[AcceptedInstance] = []

        def judge(response: requests.Response) -> str:
            nonlocal accepted
            if response.status_code in (200, 202):
                stored = _referenced_sop_uids(response.content)
                accepted = [AcceptedInstance(study_instance_uid, series_instance_uid, uid, hashes[uid])
                            for uid in stored if uid in hashes]
            if response.status_code == 200 and len(accepted) == len(instances):
                return ""
            return f"HTTP {response.status_code}: {len(accepted)} of {len(instances)} stored"

        self._timed("stow", lambda: self.session.post(
            self.service_root + "/studies", data=body.data, timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"Content-Type": body.content_type, "Accept": DICOM_JSON}), judge)
        self.state.accept(accepted, sent=len(instances))

    def qido(self) -> None:
        series = self.state.accepted_series()
        if not series:
            return
        study, series_uid, instances = self.random.choice(series)
        expected = {instance.sop_instance_uid for instance in instances}

        def judge(response: requests.Response) -> str:
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            listed = {item[SOP_INSTANCE_UID_TAG]["Value"][0] for item in json.loads(response.content)}
            missing = len(expected - listed)
            return f"{missing} stored instances not listed" if missing else ""

        self._timed("qido", lambda: self.session.get(
            f"{self.service_root}/studies/{study}/series/{series_uid}/instances", timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"Accept": DICOM_JSON}), judge)

    def wado(self) -> None:
        series = self.state.accepted_series()
        if not series:
            return
        _, _, instances = self.random.choice(series)
        instance = self.random.choice(instances)

        def judge(response: requests.Response) -> str:
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            if hashlib.sha256(single_part(response)).hexdigest() != instance.sha256:
                return "bytes differ from what was stored"
            return ""

        self._timed("wado", lambda: self.session.get(
            instance_url(self.service_root, instance), timeout=REQUEST_TIMEOUT_SECONDS,
            headers={"Accept": SINGLE_INSTANCE_ACCEPT}), judge)


def instance_url(service_root: str, instance: AcceptedInstance) -> str:
    return (f"{service_root}/studies/{instance.study_instance_uid}/series/{instance.series_instance_uid}"
            f"/instances/{instance.sop_instance_uid}")


# --- the final check -----------------------------------------------------------------------------------

@dataclass
class Verification:
    accepted: int = 0
    retrievable: int = 0
    listed: int = 0
    lost: list[str] = field(default_factory=list)  # "<sop uid>: why"
    not_listed: list[str] = field(default_factory=list)


def verify_accepted(*, base_url: str, headers: dict[str, str], state: LoadState, threads: int = 2) -> Verification:
    """Every accepted instance retrieved once (byte-identical) and looked for in its series' QIDO answer."""
    service_root = base_url + "/dicomweb"
    result = Verification(accepted=len(state.accepted))
    sessions = threading.local()
    lock = threading.Lock()

    def session() -> requests.Session:
        if not hasattr(sessions, "value"):
            sessions.value = new_session(headers)
        return sessions.value  # type: ignore[no-any-return]

    def retrieve(instance: AcceptedInstance) -> None:
        why = ""
        try:
            response = session().get(instance_url(service_root, instance), timeout=REQUEST_TIMEOUT_SECONDS,
                                     headers={"Accept": SINGLE_INSTANCE_ACCEPT})
            if response.status_code != 200:
                why = f"HTTP {response.status_code}"
            elif hashlib.sha256(single_part(response)).hexdigest() != instance.sha256:
                why = "bytes differ"
        except (requests.RequestException, ValueError) as failure:
            why = f"{type(failure).__name__}: {failure}"
        with lock:
            if why:
                result.lost.append(f"{instance.sop_instance_uid}: {why}")
            else:
                result.retrievable += 1

    def listing(series: tuple[str, str, list[AcceptedInstance]]) -> None:
        study, series_uid, instances = series
        listed: set[str] = set()
        why = ""
        try:
            response = session().get(f"{service_root}/studies/{study}/series/{series_uid}/instances",
                                     timeout=REQUEST_TIMEOUT_SECONDS, headers={"Accept": DICOM_JSON})
            if response.status_code == 200:
                listed = {item[SOP_INSTANCE_UID_TAG]["Value"][0] for item in json.loads(response.content)}
            else:
                why = f"HTTP {response.status_code}"
        except (requests.RequestException, ValueError) as failure:
            why = f"{type(failure).__name__}: {failure}"
        with lock:
            for instance in instances:
                if instance.sop_instance_uid in listed:
                    result.listed += 1
                else:
                    result.not_listed.append(f"{instance.sop_instance_uid}: {why or 'absent from QIDO answer'}")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(retrieve, list(state.accepted.values())))
        list(pool.map(listing, state.accepted_series()))
    return result
