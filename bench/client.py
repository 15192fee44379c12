"""The one DICOMweb client both peers are measured with (PS3.18 requests, plain `requests`).

Every request carries `Accept-Encoding: identity` (Orthanc gzips answers for clients that accept
gzip; neither peer may win or lose by compression) and goes over a persistent connection: one
`requests.Session` per client thread, reused for every request that thread sends.

Query values are sent literally, not percent-encoded: Orthanc does not percent-decode QIDO values
(`DOE%2A` matches nothing there), and `*`, `-` and digits are legal in a query string as they are.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter

DICOM_JSON = "application/dicom+json"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"


@dataclass
class Peer:
    """A DICOMweb server under test: its service root, the headers it needs, and its server process."""

    name: str
    service_root: str  # e.g. http://127.0.0.1:8042/dicom-web (no trailing slash)
    headers: dict[str, str] = field(default_factory=dict)
    server_pid: int | None = None
    label: str = ""

    def url(self, path: str) -> str:
        return self.service_root + path


def new_session(peer: Peer) -> requests.Session:
    session = requests.Session()
    session.headers.update({"Accept-Encoding": "identity", "User-Agent": "imaging-cloud-bench/1", **peer.headers})
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    session.mount("http://", adapter)
    return session


# --- STOW-RS (PS3.18 §10.5) ---------------------------------------------------------------------------

@dataclass
class StowBody:
    data: bytes
    content_type: str
    instances: int
    dicom_bytes: int


def stow_body(parts: list[bytes]) -> StowBody:
    """A multipart/related request body with one application/dicom part per instance (PS3.18 §8.6.1.2)."""
    boundary = f"icbench-{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    for part in parts:
        chunks += [head, part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return StowBody(
        b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}',
        len(parts), sum(len(part) for part in parts),
    )


@dataclass
class StowOutcome:
    status: int
    stored: int
    failed: int
    seconds: float
    error: str = ""


def stow(session: requests.Session, peer: Peer, body: StowBody, *, timeout: float = 600) -> StowOutcome:
    started = time.perf_counter()
    try:
        response = session.post(
            peer.url("/studies"), data=body.data,
            headers={"Content-Type": body.content_type, "Accept": DICOM_JSON}, timeout=timeout,
        )
        content = response.content
    except requests.RequestException as failure:
        return StowOutcome(0, 0, body.instances, time.perf_counter() - started, repr(failure))
    seconds = time.perf_counter() - started
    stored = failed = 0
    error = ""
    try:
        answer = json.loads(content) if content else {}
        stored = len(answer.get(REFERENCED_SOP_SEQUENCE, {}).get("Value", []))
        failed = len(answer.get(FAILED_SOP_SEQUENCE, {}).get("Value", []))
    except (ValueError, AttributeError):
        error = "answer is not DICOM JSON: " + content[:300].decode(errors="replace")
    if response.status_code not in (200, 202):
        error = error or content[:300].decode(errors="replace")
        failed = max(failed, body.instances - stored)
    elif stored + failed != body.instances:
        # PS3.18 §10.5.3: the response lists every instance, stored (00081199) or failed (00081198).
        error = error or f"HTTP {response.status_code} lists {stored} stored and {failed} failed of {body.instances}"
        failed = body.instances - stored
    return StowOutcome(response.status_code, stored, failed, seconds, error)


# --- QIDO-RS (PS3.18 §10.6) ---------------------------------------------------------------------------

@dataclass
class TimedAnswer:
    status: int
    seconds: float
    count: int = 0  # results (QIDO), instances (metadata), parts (WADO) or 1 (rendered)
    bytes: int = 0
    first_byte_seconds: float = 0.0
    content_type: str = ""
    error: str = ""


def query_string(parameters: list[tuple[str, str]]) -> str:
    """`key=value&…` with values as they are (see the module docstring for why nothing is encoded)."""
    return "&".join(f"{key}={value}" for key, value in parameters)


def qido(session: requests.Session, peer: Peer, path: str, parameters: list[tuple[str, str]]) -> TimedAnswer:
    url = peer.url(path) + ("?" + query_string(parameters) if parameters else "")
    started = time.perf_counter()
    response = session.get(url, headers={"Accept": DICOM_JSON}, timeout=120)
    content = response.content
    seconds = time.perf_counter() - started
    count, error = 0, ""
    if response.status_code == 200 and content:
        try:
            count = len(json.loads(content))
        except ValueError:
            error = "answer is not JSON"
    elif response.status_code not in (200, 204):
        error = content[:300].decode(errors="replace")
    return TimedAnswer(response.status_code, seconds, count, len(content), error=error)


# --- WADO-RS (PS3.18 §10.4) ---------------------------------------------------------------------------

def _boundary_of(content_type: str) -> bytes | None:
    for parameter in content_type.split(";"):
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "boundary":
            return value.strip('"').encode()
    return None


def retrieve_series(session: requests.Session, peer: Peer, study_uid: str, series_uid: str) -> TimedAnswer:
    """Retrieve a series as multipart/related application/dicom, as stored (`transfer-syntax=*`).

    Time to first byte is when the status line and headers have arrived (as curl's
    time_starttransfer); the body is read in 1 MiB chunks and counted, parts are counted by their
    boundary delimiters.
    """
    url = peer.url(f"/studies/{study_uid}/series/{series_uid}")
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    started = time.perf_counter()
    response = session.get(url, headers={"Accept": accept}, stream=True, timeout=600)
    first_byte = time.perf_counter() - started
    content_type = response.headers.get("Content-Type", "")
    boundary = _boundary_of(content_type)
    delimiter = b"--" + boundary if boundary else None
    total = delimiters = 0
    tail = b""
    for chunk in response.iter_content(chunk_size=1024 * 1024):
        total += len(chunk)
        if delimiter:
            # A delimiter split across two chunks is found in tail + chunk; the tail is shorter
            # than a delimiter, so no delimiter is counted twice.
            window = tail + chunk
            delimiters += window.count(delimiter)
            tail = window[-(len(delimiter) - 1):]
    seconds = time.perf_counter() - started
    parts = max(0, delimiters - 1)  # the last one is the close delimiter ("--boundary--")
    error = "" if response.status_code == 200 else f"HTTP {response.status_code}"
    return TimedAnswer(response.status_code, seconds, parts, total, first_byte, content_type, error)


def rendered_frame(session: requests.Session, peer: Peer, study_uid: str, series_uid: str, sop_uid: str,
                   frame: int = 1) -> TimedAnswer:
    url = peer.url(f"/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{frame}/rendered")
    started = time.perf_counter()
    response = session.get(url, headers={"Accept": "image/jpeg"}, timeout=120)
    content = response.content
    seconds = time.perf_counter() - started
    content_type = response.headers.get("Content-Type", "")
    is_jpeg = content[:2] == b"\xff\xd8"
    error = "" if response.status_code == 200 and is_jpeg else (
        f"HTTP {response.status_code} {content_type}: {content[:200].decode(errors='replace')}"
    )
    return TimedAnswer(response.status_code, seconds, int(is_jpeg), len(content), content_type=content_type,
                       error=error)


def study_metadata(session: requests.Session, peer: Peer, study_uid: str) -> TimedAnswer:
    started = time.perf_counter()
    response = session.get(peer.url(f"/studies/{study_uid}/metadata"), headers={"Accept": DICOM_JSON}, timeout=600)
    content = response.content
    seconds = time.perf_counter() - started
    count, error = 0, ""
    if response.status_code == 200:
        try:
            count = len(json.loads(content))
        except ValueError:
            error = "answer is not JSON"
    else:
        error = f"HTTP {response.status_code}: {content[:200].decode(errors='replace')}"
    return TimedAnswer(response.status_code, seconds, count, len(content), error=error)
