"""Streaming answers: multipart/related framing around stored objects, byte ranges, zip archives.

Instances are never loaded whole to be sent: the framing (a few hundred bytes per part) is written
around the storage chunks as they are read. Originals have a known size, so an answer made of them
has a known length — it gets a Content-Length and supports a single byte range (RFC 9110 §14),
with a boundary derived from the content so that ranges of the same resource line up.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from apps.archive import retrieval
from apps.archive.selectors import InstanceFile
from apps.dicom.multipart import PART_TAIL, close_delimiter, multipart_content_type, part_head
from apps.storage.tenant_storage import TenantStorage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    """Literal bytes, or the whole stored object of an instance."""

    data: bytes = b""
    instance: InstanceFile | None = None

    @property
    def length(self) -> int:
        return self.instance.size_bytes if self.instance is not None else len(self.data)


class VirtualBody:
    """A body made of literal and stored segments, readable whole or by byte range."""

    def __init__(self, segments: list[Segment], storage: TenantStorage) -> None:
        self.segments = segments
        self.storage = storage
        self.length = sum(segment.length for segment in segments)

    def chunks(self, start: int = 0, end_inclusive: int | None = None) -> Iterator[bytes]:
        end = self.length - 1 if end_inclusive is None else end_inclusive
        pending = b""
        offset = 0
        for segment in self.segments:
            segment_start, segment_end = offset, offset + segment.length - 1
            offset += segment.length
            if segment.length == 0 or segment_end < start or segment_start > end:
                continue
            first = max(start, segment_start) - segment_start
            last = min(end, segment_end) - segment_start
            if segment.instance is None:
                pending += segment.data[first:last + 1]
                continue
            if first == 0 and last == segment.length - 1:
                stream = retrieval.original_chunks(self.storage, segment.instance)
            else:
                stream = retrieval.original_range_chunks(self.storage, segment.instance, first, last)
            for chunk in stream:
                if pending:
                    # Send the framing together with the object's first chunk: one write, not two.
                    chunk = pending + chunk
                    pending = b""
                yield chunk
        if pending:
            yield pending


def content_boundary(files: Iterable[InstanceFile], salt: str) -> str:
    digest = hashlib.sha256(salt.encode())
    for item in files:
        digest.update(item.sha256.encode())
        digest.update(item.object_key.encode())
    return digest.hexdigest()[:32]


def originals_multipart(files: list[InstanceFile], storage: TenantStorage) -> tuple[VirtualBody, str, str]:
    """(body, content type, etag) of instances as stored, one application/dicom part each."""
    boundary = content_boundary(files, "multipart")
    segments: list[Segment] = []
    for item in files:
        head = part_head(
            boundary, f"application/dicom; transfer-syntax={item.transfer_syntax_uid}", content_length=item.size_bytes
        )
        segments += [Segment(head), Segment(instance=item), Segment(PART_TAIL)]
    segments.append(Segment(close_delimiter(boundary)))
    content_type = multipart_content_type(boundary, "application/dicom")
    return VirtualBody(segments, storage), content_type, f'"{boundary}"'


def original_single(item: InstanceFile, storage: TenantStorage) -> tuple[VirtualBody, str, str]:
    return (
        VirtualBody([Segment(instance=item)], storage),
        f"application/dicom; transfer-syntax={item.transfer_syntax_uid}",
        f'"{item.sha256[:32]}"',
    )


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _byte_range(header: str, length: int) -> tuple[int, int] | None | bool:
    """(start, end) of a single satisfiable range; None to ignore the header; False if unsatisfiable."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        return None  # multiple ranges or another unit: answer the whole body
    if not match.group(1):
        suffix = int(match.group(2))
        if suffix == 0:
            return False
        return max(0, length - suffix), length - 1
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else length - 1
    if start >= length or end < start:
        return False
    return start, min(end, length - 1)


def not_modified(request: HttpRequest, etag: str) -> bool:
    candidates = [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",") if tag.strip()]
    return etag in candidates or "*" in candidates


def virtual_body_response(
    request: HttpRequest, body: VirtualBody, content_type: str, etag: str, *, cache_control: str = "private, no-cache"
) -> HttpResponseBase:
    """200 (or 206 for a single satisfiable Range, 416 for an unsatisfiable one, 304 if unchanged)."""
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": cache_control}
    if not_modified(request, etag):
        return HttpResponse(status=304, headers=headers)
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    selected = None
    if range_header and (not if_range or if_range.strip() == etag):
        selected = _byte_range(range_header, body.length)
        if selected is False:
            return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{body.length}"})
    if isinstance(selected, tuple):
        start, end = selected
        response = StreamingHttpResponse(body.chunks(start, end), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{body.length}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = StreamingHttpResponse(body.chunks(), content_type=content_type)
        response["Content-Length"] = str(body.length)
    for name, value in headers.items():
        response[name] = value
    return response


def generated_multipart(
    parts: Iterable[tuple[str, Callable[[], bytes | None]]], part_type: str, *, boundary: str,
    content_locations: Sequence[str] = (), **type_parameters: str
) -> StreamingHttpResponse:
    """Parts produced one at a time (transcoded instances, rendered frames): (content type, producer).
    A producer returning None is left out. `content_locations[i]`, when given, is the URL of part i's
    resource, sent as its Content-Location (PS3.18 §8.6.1.2)."""

    def chunks() -> Iterator[bytes]:
        for position, (content_type, produce) in enumerate(parts):
            data = produce()
            if data is None:
                continue
            location = content_locations[position] if position < len(content_locations) else None
            extra = (("Content-Location", location),) if location else ()
            yield part_head(boundary, content_type, content_length=len(data), extra_headers=extra) + data
            yield PART_TAIL
        yield close_delimiter(boundary)

    return StreamingHttpResponse(chunks(), content_type=multipart_content_type(boundary, part_type, **type_parameters))


class _Sink(io.RawIOBase):
    """A write-only stream collecting what zipfile writes, handed on chunk by chunk."""

    def __init__(self) -> None:
        super().__init__()
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._pieces.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces = []
        return data


def zip_stream(entries: Iterable[tuple[str, Iterator[bytes]]]) -> Iterator[bytes]:
    """A zip archive (stored, not compressed: DICOM pixel data rarely shrinks) written as it streams."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, content in entries:
            with archive.open(zipfile.ZipInfo(name), mode="w", force_zip64=True) as member:
                for chunk in content:
                    member.write(chunk)
                    if len(sink._pieces) > 8:
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()
