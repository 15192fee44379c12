"""Resumable transfers into an upload session: the server side of the tus 1.0.0 core protocol with
its creation, termination and checksum extensions (docs/uploads.md explains why it is our own).

A transfer is one file. Its offset lives in the database row; every PATCH body is written to its
own staging object under the session's staging prefix (fsync'ed by the store), and the row's
offset and list of pieces move forward only after the piece is durable, under the row's lock, so
a dropped connection keeps what arrived and two requests at the same offset cannot both count.
When the last byte arrives the pieces are read back in order as one stream into
`upload_file_receive`, the same path as a plain POST: the quota, the audit row and the ingest are
the session's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import Actor
from apps.core.errors import Conflict, DomainError, InvalidInput, NotFound
from apps.core.workflow import Move, move
from apps.storage.tenant_storage import storage_for
from apps.uploads.models import UploadSession, UploadSessionStatus, UploadTransfer, UploadTransferStatus
from apps.uploads.services import (
    StorageQuotaExceeded,
    UploadTooLarge,
    _refuse_over_storage_quota,
    display_name,
    upload_file_receive,
)
from apps.uploads.workflow import UPLOAD_TRANSFER_WORKFLOW
from tenants.context import current_tenant

logger = logging.getLogger(__name__)

# A request that claimed the assembly and died: after this long another request may assemble.
ASSEMBLY_CLAIM_SECONDS = 600
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


class OffsetMismatch(Conflict):
    """tus 1.0.0 "PATCH": the request's Upload-Offset is not the server's offset."""

    code = "upload_offset_mismatch"


class ChecksumMismatch(DomainError):
    """tus checksum extension: the piece's bytes do not have the checksum the client sent."""

    code = "upload_checksum_mismatch"
    status = 460


class TransferBeingAssembled(DomainError):
    """Every byte arrived and another request is handing the file to the session: ask again."""

    code = "upload_transfer_assembling"
    status = 423


class TransferRefused(DomainError):
    """Every byte arrived but the file was refused (its code says why); nothing of it was kept."""

    status = 410


class TransferNotFound(NotFound):
    code = "upload_transfer_not_found"


def _transfer_prefix(transfer: UploadTransfer) -> str:
    # Under the session's staging prefix: cancelling or expiring the session deletes it too.
    return f"uploads/{transfer.session_id}/transfers/{transfer.pk}"


def _open_session(session_id: uuid.UUID) -> UploadSession:
    session = UploadSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such upload session.", code="upload_not_found")
    if session.status != UploadSessionStatus.OPEN:
        raise Conflict("This upload session no longer accepts files.", code="upload_not_open")
    return session


def upload_transfer_create(*, session_id: uuid.UUID, name: str, length: int) -> UploadTransfer:
    """Start a transfer of `length` bytes (tus "creation"); refused at once when the file is over the
    per-file limit or would take the tenant over its storage quota."""
    _open_session(session_id)
    if length < 0:
        raise InvalidInput("Upload-Length must be a non-negative integer.", code="upload_length_invalid")
    if length > settings.UPLOAD_MAX_FILE_BYTES:
        raise UploadTooLarge(f"The file is larger than the {settings.UPLOAD_MAX_FILE_BYTES} bytes accepted per file.")
    _refuse_over_storage_quota(incoming_bytes=length)
    return UploadTransfer.objects.create(session_id=session_id, name=display_name(name), length=length)


def upload_transfer_get(*, session_id: uuid.UUID, transfer_id: uuid.UUID) -> UploadTransfer:
    transfer = UploadTransfer.objects.filter(pk=transfer_id, session_id=session_id).first()
    if transfer is None:
        raise TransferNotFound("No such transfer in this upload session.")
    return transfer


def upload_transfer_offset(*, session_id: uuid.UUID, transfer_id: uuid.UUID, actor: Actor) -> UploadTransfer:
    """The transfer as a resuming client sees it (tus "HEAD"): its full length is reported only once
    the file is the session's, so a client never finishes the session before its file is in it."""
    transfer = upload_transfer_get(session_id=session_id, transfer_id=transfer_id)
    if transfer.status == UploadTransferStatus.REFUSED:
        raise TransferRefused(transfer.error_detail, code=transfer.error_code)
    if transfer.status == UploadTransferStatus.RECEIVING and transfer.offset == transfer.length:
        # The request that received the last byte died before handing the file over, or is doing it.
        transfer = upload_transfer_complete(transfer_id=transfer.pk, actor=actor)
        if transfer.status == UploadTransferStatus.RECEIVING:
            raise TransferBeingAssembled("The file is being handed to the upload session; ask again shortly.")
    return transfer


class _PieceReader:
    """Reads a PATCH body up to `limit` bytes, hashing it; a dropped connection ends the piece
    (what arrived is kept, as tus asks) instead of failing it."""

    def __init__(self, stream: BinaryIO, limit: int, checksum: str | None) -> None:
        self._stream = stream
        self._remaining = limit
        self.count = 0
        self.interrupted = False
        self._hash = CHECKSUM_ALGORITHMS[checksum]() if checksum else None

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        wanted = self._remaining if size < 0 else min(size, self._remaining)
        try:
            data = self._stream.read(wanted)
        except OSError:
            self.interrupted = True
            return b""
        self._remaining -= len(data)
        self.count += len(data)
        if self._hash is not None:
            self._hash.update(data)
        return data

    def digest(self) -> bytes:
        return self._hash.digest() if self._hash is not None else b""


def _parse_checksum(header: str) -> tuple[str, bytes] | None:
    if not header:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidInput(f"Upload-Checksum algorithm {algorithm!r} is not supported.", code="upload_checksum_algorithm")
    try:
        return algorithm, base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise InvalidInput("Upload-Checksum is not base64.", code="upload_checksum_invalid") from error


def upload_transfer_append(
    *, session_id: uuid.UUID, transfer_id: uuid.UUID, offset: int, stream: BinaryIO, declared_length: int | None,
    checksum_header: str, actor: Actor,
) -> UploadTransfer:
    """Append a PATCH body at `offset` (tus core "PATCH"); the last byte hands the file to the session."""
    transfer = upload_transfer_get(session_id=session_id, transfer_id=transfer_id)
    _open_session(session_id)
    if transfer.status != UploadTransferStatus.RECEIVING:
        raise Conflict("This transfer is complete.", code="upload_transfer_complete")
    if offset != transfer.offset:
        raise OffsetMismatch(f"Upload-Offset {offset} is not the server's offset {transfer.offset}.")
    remaining = transfer.length - transfer.offset
    if declared_length is not None and declared_length > remaining:
        raise UploadTooLarge(f"The body of {declared_length} bytes goes past the upload's length ({remaining} bytes remain).")
    checksum = _parse_checksum(checksum_header)
    reader = _PieceReader(stream, remaining, checksum[0] if checksum else None)
    piece_key = f"{_transfer_prefix(transfer)}/{offset:015d}-{uuid.uuid4().hex[:8]}"
    storage = storage_for(current_tenant())
    storage.put_stream(piece_key, reader)  # type: ignore[arg-type]
    if checksum is not None and not reader.interrupted and reader.digest() != checksum[1]:
        storage.delete(piece_key)
        raise ChecksumMismatch("The piece's checksum does not match Upload-Checksum; nothing of it was kept.")
    if reader.count == 0:
        storage.delete(piece_key)
        return transfer
    with transaction.atomic():
        locked = UploadTransfer.objects.select_for_update().get(pk=transfer.pk)
        if locked.offset != offset or locked.status != UploadTransferStatus.RECEIVING:
            # Another request at the same offset counted first; this piece is not needed.
            transaction.on_commit(lambda: storage.delete(piece_key))
            raise OffsetMismatch(f"Upload-Offset {offset} is not the server's offset {locked.offset}.")
        locked.offset += reader.count
        locked.part_keys = [*locked.part_keys, piece_key]
        locked.save(update_fields=["offset", "part_keys", "updated_at"])
        UploadSession.objects.filter(pk=session_id).update(last_activity_at=timezone.now())
    if locked.offset == locked.length:
        return upload_transfer_complete(transfer_id=locked.pk, actor=actor)
    return locked


def _pieces_stream(transfer: UploadTransfer, digest: hashlib._Hash) -> BinaryIO:
    storage = storage_for(current_tenant())

    def chunks() -> Iterator[bytes]:
        for key in transfer.part_keys:
            for chunk in storage.get_stream(key):
                digest.update(chunk)
                yield chunk

    class _Concatenated:
        def __init__(self) -> None:
            self._chunks = chunks()
            self._buffer = b""

        def read(self, size: int = -1) -> bytes:
            while size < 0 or len(self._buffer) < size:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buffer += chunk
            if size < 0:
                data, self._buffer = self._buffer, b""
            else:
                data, self._buffer = self._buffer[:size], self._buffer[size:]
            return data

    return _Concatenated()  # type: ignore[return-value]


def _unrecorded(moved: Move) -> None:
    """A transfer's move leaves no row of its own: the file it becomes is its session's (apps.uploads.workflow)."""


def upload_transfer_complete(*, transfer_id: uuid.UUID, actor: Actor) -> UploadTransfer:
    """Hand a fully received transfer to its session as one file, once: the request that claims it
    assembles; a later HEAD finishes a claim whose request died."""
    claim_expired = timezone.now() - timedelta(seconds=ASSEMBLY_CLAIM_SECONDS)
    claimed = (UploadTransfer.objects.filter(pk=transfer_id, status=UploadTransferStatus.RECEIVING)
               .exclude(completing_since__gt=claim_expired)
               .update(completing_since=timezone.now()))
    transfer = UploadTransfer.objects.get(pk=transfer_id)
    if not claimed or transfer.offset != transfer.length:
        return transfer
    digest = hashlib.sha256()
    try:
        upload_file = upload_file_receive(session_id=transfer.session_id, name=transfer.name,
                                          stream=_pieces_stream(transfer, digest), actor=actor)
    except (StorageQuotaExceeded, UploadTooLarge, Conflict) as refused:
        move(transfer, UPLOAD_TRANSFER_WORKFLOW, "refuse", record=_unrecorded,
             error_code=refused.code, error_detail=refused.detail[:500])
        storage_for(current_tenant()).delete_prefix(_transfer_prefix(transfer) + "/")
        raise
    move(transfer, UPLOAD_TRANSFER_WORKFLOW, "hand_over", record=_unrecorded,
         upload_file=upload_file, sha256=digest.hexdigest())
    storage_for(current_tenant()).delete_prefix(_transfer_prefix(transfer) + "/")
    return transfer


def upload_transfer_terminate(*, session_id: uuid.UUID, transfer_id: uuid.UUID) -> None:
    """Drop an unfinished transfer and its pieces (tus "termination"); a finished one stays (its file
    belongs to the session now)."""
    transfer = upload_transfer_get(session_id=session_id, transfer_id=transfer_id)
    if transfer.status == UploadTransferStatus.RECEIVED:
        raise Conflict("This transfer is complete; its file is part of the session.", code="upload_transfer_complete")
    storage_for(current_tenant()).delete_prefix(_transfer_prefix(transfer) + "/")
    transfer.delete()
