"""Reading archived instances back from object storage: original bytes, frames, rendered images.

Only canonical renders are kept in the tenant's storage: what a viewer's plain request or the
warm-ahead task asks for (a frame with the object's own window and the default size and quality, in
JPEG or PNG) and the default-size thumbnails. They live beside the instance they come from
(``…/<upload>/rendered/…``, removed with it), each recorded as a RenderedCacheEntry so that their
bytes count toward the tenant's storage usage and the cache is held under its per-tenant cap
(apps.archive.services.storage_extras). A render with ad-hoc parameters (window, viewport,
quality, a thumbnail viewport) is made on the fly and never stored: the number of parameter sets
is unbounded, and storing each would grow the tenant's storage for good.

Every render, canonical or not, may also sit in a small per-process memory cache, bounded in
bytes. Both caches are keyed by the stored copy (its object key, so by its content) and the
normalised rendering parameters, so a cached image can never be stale.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import pydicom
from django.conf import settings
from django.db import DatabaseError
from kombu.exceptions import OperationalError as KombuOperationalError
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from apps.archive.keys import derived_key
from apps.archive.selectors import InstanceFile
from apps.core.errors import DomainError
from apps.dicom.rendering import DEFAULT_THUMBNAIL_SIZE, RenderOptions, render_frame, render_thumbnail
from apps.dicom.transcode import (
    LOSSY_TRANSFER_SYNTAXES,
    NATIVE_TRANSFER_SYNTAXES,
    WEB_FORBIDDEN_TRANSFER_SYNTAXES,
    Frame,
    TranscodeNotPossible,
    check_transcodable,
    decode_frame_to_uncompressed,
    encode_frame_jpeg2000,
    extract_frames,
    transcode_to_explicit_vr_little_endian,
)
from apps.storage.backends import ObjectNotFound, StorageUnavailable
from apps.storage.tenant_storage import TenantStorage
from tenants.context import current_schema_name

logger = logging.getLogger(__name__)

RANGE_CHUNK_BYTES = 8 * 1024 * 1024


class InstanceUnreadable(DomainError):
    """The stored object is missing or not readable as DICOM any more (storage lost or damaged it)."""

    code = "instance_unreadable"
    status = 500


# --- a byte-bounded LRU, per process ---------------------------------------------------------------------


class _ByteLru:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: bytes) -> None:
        if len(value) > self.capacity // 4:
            return
        with self._lock:
            previous = self._items.pop(key, None)
            if previous is not None:
                self._size -= len(previous)
            self._items[key] = value
            self._size += len(value)
            while self._size > self.capacity and self._items:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


_rendered_memory = _ByteLru(settings.RENDERED_MEMORY_CACHE_BYTES)
_multiframe_memory = _ByteLru(settings.RENDERED_MEMORY_CACHE_BYTES)


def _memory_key(relative_key: str) -> tuple[str, str]:
    # Relative keys repeat across tenants (the same UIDs may exist in two tenants): add the schema.
    return (current_schema_name(), relative_key)


# --- originals ---------------------------------------------------------------------------------------------


def original_chunks(storage: TenantStorage, instance: InstanceFile) -> Iterator[bytes]:
    return storage.get_stream(instance.object_key)


def original_range_chunks(storage: TenantStorage, instance: InstanceFile, start: int, end_inclusive: int) -> Iterator[bytes]:
    position = start
    while position <= end_inclusive:
        last = min(end_inclusive, position + RANGE_CHUNK_BYTES - 1)
        yield storage.get_range(instance.object_key, position, last)
        position = last + 1


def original_bytes(storage: TenantStorage, instance: InstanceFile) -> bytes:
    if instance.number_of_frames > 1:
        cached = _multiframe_memory.get(_memory_key(instance.object_key))
        if cached is not None:
            return cached
    try:
        data = storage.get_bytes(instance.object_key)
    except ObjectNotFound as error:
        raise InstanceUnreadable(f"the stored object of {instance.sop_instance_uid} is missing") from error
    if instance.number_of_frames > 1:
        _multiframe_memory.put(_memory_key(instance.object_key), data)
    return data


def read_dataset(storage: TenantStorage, instance: InstanceFile) -> Dataset:
    data = original_bytes(storage, instance)
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as error:
        raise InstanceUnreadable(f"the stored object of {instance.sop_instance_uid} is not readable: {error}") from error


# --- frames ------------------------------------------------------------------------------------------------

FrameForm = Literal["as_stored", "uncompressed", "jpeg2000"]


def frames(storage: TenantStorage, instance: InstanceFile, numbers: Sequence[int], form: FrameForm) -> list[Frame]:
    """Frames (1-based) as stored, decoded to uncompressed little endian, or re-encoded as JPEG 2000.

    Raises FrameNotFound for a frame the instance lacks, TranscodeNotPossible when the form asked
    for cannot be produced from this instance.
    """
    dataset = read_dataset(storage, instance)
    if form == "as_stored":
        return extract_frames(dataset, numbers)
    if form == "uncompressed":
        return [
            Frame(data=decode_frame_to_uncompressed(dataset, number), media_type="application/octet-stream",
                  transfer_syntax_uid="1.2.840.10008.1.2.1")
            for number in numbers
        ]
    return [encode_frame_jpeg2000(dataset, number) for number in numbers]


# --- instances in a transfer syntax ------------------------------------------------------------------------

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
ANY_TRANSFER_SYNTAX = "*"


@dataclass(frozen=True, slots=True)
class InstanceToSend:
    """An instance of a retrieve and the transfer syntax it is sent in, decided before the first byte."""

    instance: InstanceFile
    transfer_syntax_uid: str

    @property
    def as_stored(self) -> bool:
        return self.transfer_syntax_uid == self.instance.transfer_syntax_uid


def instances_to_send(
    storage: TenantStorage, files: Sequence[InstanceFile], *, transfer_syntax: str, transfer_syntax_given: bool
) -> list[InstanceToSend] | None:
    """The transfer syntax of every instance of a retrieve, or None when one cannot be sent (406).

    PS3.18 §8.7.3: `*` sends every instance as stored; Implicit VR Little Endian and Explicit VR Big
    Endian "shall not be used with Web Services", so asking for them is refused; Explicit VR Little
    Endian (asked for, or the default when the request names no transfer syntax) is made from an
    instance whose pixel data decodes here, and when the request named no transfer syntax an
    instance held only in lossy compressed form that does not decode is sent as stored, as the
    section allows. Each instance to transcode is checked before anything is sent
    (`check_transcodable`), so a retrieve is refused whole rather than broken off mid-stream.
    """
    if transfer_syntax == ANY_TRANSFER_SYNTAX:
        return [InstanceToSend(item, item.transfer_syntax_uid) for item in files]
    if transfer_syntax in WEB_FORBIDDEN_TRANSFER_SYNTAXES:
        return None
    planned: list[InstanceToSend] = []
    for item in files:
        if item.transfer_syntax_uid == transfer_syntax:
            planned.append(InstanceToSend(item, transfer_syntax))
        elif transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN and _transcodable(storage, item):
            planned.append(InstanceToSend(item, EXPLICIT_VR_LITTLE_ENDIAN))
        elif not transfer_syntax_given and item.transfer_syntax_uid in LOSSY_TRANSFER_SYNTAXES:
            planned.append(InstanceToSend(item, item.transfer_syntax_uid))
        else:
            return None
    return planned


def _transcodable(storage: TenantStorage, item: InstanceFile) -> bool:
    if item.transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES:
        return True  # native pixel data is re-encoded without decoding
    try:
        check_transcodable(read_dataset(storage, item))
    except TranscodeNotPossible:
        return False
    return True


def instance_bytes(storage: TenantStorage, planned: InstanceToSend) -> bytes:
    """The Part 10 bytes of an instance in the transfer syntax planned for it."""
    data = original_bytes(storage, planned.instance)
    if planned.as_stored:
        return data
    return transcode_to_explicit_vr_little_endian(data)


# --- rendered ----------------------------------------------------------------------------------------------


def _options_name(options: RenderOptions) -> str:
    """A short, stable name for rendering parameters (same parameters, same name)."""
    parts = (
        options.media_type, options.quality, options.frame_index, options.window, options.window_function,
        options.viewport, options.source_region,
    )
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:20]
    extension = "png" if options.media_type == "image/png" else "jpg"
    return f"{options.frame_index + 1}-{digest}.{extension}"


def default_rendered_options() -> RenderOptions:
    """What a plain `/rendered` (or `/frames/1/rendered`) request asks for: no window, viewport or quality."""
    return RenderOptions.from_query_parameters(
        {"window": "", "viewport": "", "quality": ""}, media_type="image/jpeg", frame_index=0
    )


def is_canonical_render(options: RenderOptions) -> bool:
    """True for what a viewer's plain `/rendered` or `/frames/{n}/rendered` asks for (any frame,
    JPEG or PNG, no window, viewport or quality): the renders worth keeping in storage."""
    return options == replace(default_rendered_options(), media_type=options.media_type,
                              frame_index=options.frame_index)


def rendered_cache_key(instance: InstanceFile, options: RenderOptions) -> str:
    """Where the frame rendered with `options` is cached, beside the instance's object."""
    return derived_key(instance.object_key, _rendered_name(options))


def _rendered_name(options: RenderOptions) -> str:
    return "rendered/" + _options_name(options)


def rendered_is_cached(storage: TenantStorage, instance: InstanceFile, options: RenderOptions) -> bool:
    return storage.exists(rendered_cache_key(instance, options))


def rendered_etag(instance: InstanceFile, name: str) -> str:
    return hashlib.sha256(f"{instance.sha256}:{instance.object_key}:{name}".encode()).hexdigest()[:32]


def _cached(storage: TenantStorage, instance: InstanceFile, key: str, *, in_storage: bool) -> bytes | None:
    memory_key = _memory_key(key)
    data = _rendered_memory.get(memory_key)
    if data is not None or not in_storage:
        return data
    try:
        data = storage.get_bytes(key)
    except ObjectNotFound:
        return None
    except (OSError, StorageUnavailable):
        logger.warning("Rendered cache unreadable at %s", key, exc_info=True)
        return None
    if not data:  # an entry cut short by a power cut before its write reached the disk
        return None
    _rendered_memory.put(memory_key, data)
    # Refreshes the entry's last use for the eviction order (and counts an object no row names yet).
    _record_entry(instance, key, len(data))
    return data


def _record_entry(instance: InstanceFile, key: str, size: int) -> None:
    from apps.archive.services.storage_extras import rendered_cache_entry_record

    try:
        total = rendered_cache_entry_record(object_key=key, instance_object_key=instance.object_key, size_bytes=size)
    except DatabaseError:
        # The image is answered all the same; an object no row names is counted when next served.
        logger.warning("Could not record rendered cache entry %s", key, exc_info=True)
        return
    cap = settings.RENDERED_CACHE_MAX_BYTES_PER_TENANT
    if total is not None and total > cap and total - size <= cap:
        # This write took the cache over its cap: evict in the background (the periodic sweep
        # catches any other case, a message lost to a broker outage included).
        from tenants.context import current_tenant
        from tenants.deployment import WorkKind
        from tenants.queues import enqueue

        try:
            enqueue("apps.archive.tasks.rendered_cache_evict", tenant=current_tenant(), work=WorkKind.INGEST)
        except (KombuOperationalError, OSError):
            logger.warning("Could not queue the rendered cache eviction; the periodic sweep will", exc_info=True)


def _remember(storage: TenantStorage, instance: InstanceFile, key: str, data: bytes, media_type: str,
              *, in_storage: bool) -> None:
    """Keep a render in this process's memory and, when canonical, in the tenant's storage.

    The storage write is done before answering: each web worker process keeps only its own memory
    LRU, so a viewer's next request, served by another process, must find it in storage (measured:
    an asynchronous write made warm requests render again).
    """
    _rendered_memory.put(_memory_key(key), data)
    if not in_storage or settings.RENDERED_CACHE_MAX_BYTES_PER_TENANT <= 0:
        return
    try:
        # Derived and re-made on a miss: not worth an fsync (an entry lost in a power cut, or left
        # empty, is rendered again; see _cached).
        storage.put_bytes(key, data, content_type=media_type, sync=False)
    except (OSError, StorageUnavailable):
        logger.warning("Could not cache rendered image at %s", key, exc_info=True)
        return
    _record_entry(instance, key, len(data))


def rendered(storage: TenantStorage, instance: InstanceFile, options: RenderOptions) -> tuple[bytes, str]:
    """The rendered frame (PS3.18 §10.4.1.1.3) and its ETag, from the cache or rendered now.

    Only a canonical render (`is_canonical_render`) is read from and written to storage.

    Raises RenderingNotPossible / RenderingParameterError from the renderer.
    """
    name = _rendered_name(options)
    key = derived_key(instance.object_key, name)
    etag = rendered_etag(instance, name)
    canonical = is_canonical_render(options)
    data = _cached(storage, instance, key, in_storage=canonical)
    if data is None:
        dataset = read_dataset(storage, instance)
        data = render_frame(dataset, options)
        _remember(storage, instance, key, data, options.media_type, in_storage=canonical)
    return data, etag


def thumbnail(
    storage: TenantStorage, instance: InstanceFile, *, size: int, media_type: Literal["image/jpeg", "image/png"],
) -> tuple[bytes, str]:
    """A thumbnail of the instance's middle frame (PS3.18 §10.4.1.1.4), cached like rendered frames
    (in storage at the default size only)."""
    extension = "png" if media_type == "image/png" else "jpg"
    name = f"thumbnail/{size}.{extension}"
    key = derived_key(instance.object_key, name)
    etag = rendered_etag(instance, name)
    canonical = size == DEFAULT_THUMBNAIL_SIZE
    data = _cached(storage, instance, key, in_storage=canonical)
    if data is None:
        dataset = read_dataset(storage, instance)
        data = render_thumbnail(dataset, size=size, media_type=media_type)
        _remember(storage, instance, key, data, media_type, in_storage=canonical)
    return data, etag


def thumbnail_is_cached(storage: TenantStorage, instance: InstanceFile, *, size: int, media_type: str) -> bool:
    extension = "png" if media_type == "image/png" else "jpg"
    return storage.exists(derived_key(instance.object_key, f"thumbnail/{size}.{extension}"))

