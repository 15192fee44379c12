"""Upload-session use cases: open, receive a file, finish (queue the ingest), process, cancel, expire.

Bytes staged by an open session count toward the tenant's storage quota (StorageExtrasUsage): a
file that would take the tenant over it is refused. They stop counting when the session is
finished (its files become archive bytes, checked again by the archive's own quota), cancelled
or expired (its staged bytes deleted). An open session that received nothing for
UPLOAD_SESSION_IDLE_EXPIRY_SECONDS is expired by a periodic sweep (docs/security.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.accounts.models import User
from apps.archive.models import StorageExtrasUsage
from apps.archive.selectors import storage_usage
from apps.archive.services.storage_extras import staged_upload_bytes_change
from apps.audit.actions import AuditAction
from apps.audit.services import Actor, audit_record, audited_move
from apps.core.errors import Conflict, DomainError, InvalidInput, NotFound
from apps.core.workflow import InvalidTransition, Move, move
from apps.storage.backends import ObjectNotFound
from apps.storage.tenant_storage import storage_for
from apps.uploads.models import (
    UploadFile,
    UploadFileStatus,
    UploadItem,
    UploadItemStatus,
    UploadSession,
    UploadSessionStatus,
)
from apps.uploads.workflow import UPLOAD_FILE_WORKFLOW, UPLOAD_SESSION_WORKFLOW
from apps.uploads.zip_reader import UnsafeArchive, ZipLimits, is_zip, iter_zip_members
from tenants.context import current_tenant
from tenants.deployment import WorkKind, policy_for
from tenants.queues import enqueue_on_commit

logger = logging.getLogger(__name__)

_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._ ()+-]")


@dataclass(frozen=True)
class IngestOutcome:
    status: str
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    failure_code: str = ""
    failure_detail: str = ""

    @classmethod
    def failed(cls, code: str, detail: str) -> IngestOutcome:
        return cls(status=UploadItemStatus.FAILED, failure_code=code, failure_detail=detail)


def ingest_one(*, stream: BinaryIO, actor: Actor) -> IngestOutcome:
    """Ingest one DICOM object through the archive's ingest service (the same path STOW-RS takes)."""
    from apps.archive.services import instance_store_file

    report = instance_store_file(stream=stream, actor=actor, via="upload")
    if report.stored:
        stored = report.stored[0]
        return IngestOutcome(
            status=UploadItemStatus.DUPLICATE if stored.already_stored else UploadItemStatus.STORED,
            sop_instance_uid=stored.sop_instance_uid, study_instance_uid=stored.study_instance_uid,
        )
    failed = report.failed[0]
    outcome = IngestOutcome.failed(failed.reason.name.lower(), failed.detail)
    return IngestOutcome(
        status=outcome.status, sop_instance_uid=failed.sop_instance_uid, failure_code=outcome.failure_code,
        failure_detail=outcome.failure_detail,
    )


class UploadTooLarge(DomainError):
    code = "upload_too_large"
    status = 413


class StorageQuotaExceeded(DomainError):
    code = "storage_quota_exceeded"
    status = 413


def _refuse_over_storage_quota(*, incoming_bytes: int) -> None:
    """Raise StorageQuotaExceeded when `incoming_bytes` more would take the tenant over its storage
    quota (archive, rendered cache and staged uploads together)."""
    limit = policy_for(current_tenant()).quotas().storage_bytes
    if limit is None:
        return
    used = storage_usage().total_bytes
    if used + incoming_bytes > limit:
        raise StorageQuotaExceeded(
            f"The plan's storage quota of {limit} bytes would be exceeded ({used} bytes are in use, "
            f"staged uploads included); nothing was stored."
        )


def display_name(raw_name: str) -> str:
    """A file name fit to show back to the user; it is never used to build a storage key or a path."""
    base = raw_name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_NAME_CHARACTERS.sub("_", base).strip(" .") or "upload"
    return cleaned[:200]


def upload_session_open(*, user: User, label: str = "", idempotency_key: str = "", actor: Actor) -> UploadSession:
    """Open a session; the same Idempotency-Key from the same user returns the session it opened."""
    if idempotency_key:
        existing = UploadSession.objects.filter(created_by=user, idempotency_key=idempotency_key).first()
        if existing:
            return existing
    try:
        with transaction.atomic():
            session = UploadSession.objects.create(created_by=user, label=label[:200], idempotency_key=idempotency_key)
            audit_record(action=AuditAction.UPLOAD_OPEN, actor=actor, object_type="upload_session", object_id=session.pk)
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its session.
        return UploadSession.objects.get(created_by=user, idempotency_key=idempotency_key)
    return session


def _open_session_for_update(session_id: uuid.UUID) -> UploadSession:
    session = UploadSession.objects.select_for_update().filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such upload session.", code="upload_not_found")
    return session


class _CountingLimitReader:
    """Reads through a stream, refusing to pass more than `limit` bytes."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        if self.count > self._limit:
            raise UploadTooLarge(f"The file is larger than the {self._limit} bytes accepted per file.")
        return data


def upload_file_receive(*, session_id: uuid.UUID, name: str, stream: BinaryIO, actor: Actor) -> UploadFile:
    """Stream one file (DICOM or zip) into staging storage and record it in the session."""
    session = UploadSession.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such upload session.", code="upload_not_found")
    if session.status != UploadSessionStatus.OPEN:
        raise Conflict("This upload session no longer accepts files.", code="upload_not_open")
    # A tenant already at its quota is refused before a byte is read.
    _refuse_over_storage_quota(incoming_bytes=1)
    staging_key = f"uploads/{session.pk}/{uuid.uuid4().hex}"
    storage = storage_for(current_tenant())
    reader = _CountingLimitReader(stream, settings.UPLOAD_MAX_FILE_BYTES)
    stored = storage.put_stream(staging_key, reader)  # type: ignore[arg-type]
    try:
        with transaction.atomic():
            session = _open_session_for_update(session.pk)
            if session.status != UploadSessionStatus.OPEN:
                raise Conflict("This upload session no longer accepts files.", code="upload_not_open")
            # The staged-bytes row, locked: concurrent files of the tenant are checked one after another.
            StorageExtrasUsage.objects.get_or_create(pk=1)
            StorageExtrasUsage.objects.select_for_update().filter(pk=1).first()
            _refuse_over_storage_quota(incoming_bytes=stored.size)
            upload_file = UploadFile.objects.create(
                session=session, name=display_name(name), staging_key=staging_key, size=stored.size
            )
            UploadSession.objects.filter(pk=session.pk).update(
                files_received=F("files_received") + 1, bytes_received=F("bytes_received") + stored.size,
                last_activity_at=timezone.now(),
            )
            staged_upload_bytes_change(delta=stored.size)
            audit_record(
                action=AuditAction.UPLOAD_FILE, actor=actor, object_type="upload_session", object_id=session.pk,
                detail={"file": upload_file.name, "bytes": stored.size},
            )
    except BaseException:
        storage.delete(staging_key)
        raise
    return upload_file


def upload_session_finish(*, session_id: uuid.UUID, actor: Actor) -> UploadSession:
    """Close the session to new files and queue its ingest; finishing twice is harmless."""
    with transaction.atomic():
        session = _open_session_for_update(session_id)
        if session.status == UploadSessionStatus.CANCELLED:
            raise Conflict("This upload session was cancelled.", code="upload_cancelled")
        if session.status == UploadSessionStatus.EXPIRED:
            raise Conflict("This upload session expired after receiving nothing for too long; its files were "
                           "deleted. Open a new session.", code="upload_expired")
        if session.status == UploadSessionStatus.PROCESSING:
            # Finishing again after a lost hand-off sends the processing again; it skips what is done.
            enqueue_on_commit("apps.uploads.tasks.upload_session_process", tenant=current_tenant(), work=WorkKind.INGEST,
                              args=(str(session.pk),))
            return session
        if session.status != UploadSessionStatus.OPEN:
            return session
        if session.files_received == 0:
            raise InvalidInput("Add at least one file before finishing.", code="upload_empty")
        audited_move(session, UPLOAD_SESSION_WORKFLOW, "finish", actor=actor, action=AuditAction.UPLOAD_FINISH,
                     object_type="upload_session", last_activity_at=timezone.now())
        # From here its files become archive bytes, counted (and checked) by the archive's quota.
        staged_upload_bytes_change(delta=-_staged_bytes_of(session))
        enqueue_on_commit("apps.uploads.tasks.upload_session_process", tenant=current_tenant(), work=WorkKind.INGEST, args=(str(session.pk),))
    return session


def upload_session_cancel(*, session_id: uuid.UUID, actor: Actor) -> UploadSession:
    with transaction.atomic():
        session = _open_session_for_update(session_id)
        if session.status != UploadSessionStatus.OPEN:
            raise Conflict("Only a session still receiving files can be cancelled.", code="upload_not_open")
        audited_move(session, UPLOAD_SESSION_WORKFLOW, "cancel", actor=actor, action=AuditAction.UPLOAD_CANCEL,
                     object_type="upload_session", finished_at=timezone.now())
        staging_keys = list(session.files.values_list("staging_key", flat=True))
        staged_upload_bytes_change(delta=-_staged_bytes_of(session))
    storage = storage_for(current_tenant())
    for key in staging_keys:
        storage.delete(key)
    storage.delete_prefix(f"uploads/{session.pk}/transfers/")  # unfinished resumable transfers
    return session


def _staged_bytes_of(session: UploadSession) -> int:
    """Bytes of the session's files still waiting in staging (received, not yet processed)."""
    total = session.files.filter(status=UploadFileStatus.RECEIVED).aggregate(total=Sum("size"))["total"]
    return int(total or 0)


def upload_sessions_expire(*, idle_seconds: int, now: datetime | None = None) -> int:
    """Expire every open session that received nothing for `idle_seconds`: its staged bytes are
    deleted and stop counting toward the quota; each is audited. Safe to run twice (a session is
    re-checked under its lock). Returns how many were expired."""
    cutoff = (now or timezone.now()) - timedelta(seconds=idle_seconds)
    idle = list(UploadSession.objects.filter(status=UploadSessionStatus.OPEN, last_activity_at__lt=cutoff)
                .values_list("pk", flat=True))
    storage = storage_for(current_tenant())
    expired = 0
    for session_id in idle:
        with transaction.atomic():
            session = UploadSession.objects.select_for_update().filter(pk=session_id).first()
            if session is None or session.status != UploadSessionStatus.OPEN or session.last_activity_at >= cutoff:
                continue
            staging_keys = list(session.files.values_list("staging_key", flat=True))
            staged = _staged_bytes_of(session)
            audited_move(
                session, UPLOAD_SESSION_WORKFLOW, "expire", actor=Actor.system("uploads.expiry"),
                action=AuditAction.UPLOAD_EXPIRE, object_type="upload_session",
                detail={"idle_seconds": idle_seconds, "staged_bytes": staged, "files": len(staging_keys)},
                finished_at=timezone.now(),
            )
            staged_upload_bytes_change(delta=-staged)
        for key in staging_keys:
            storage.delete(key)
        storage.delete_prefix(f"uploads/{session_id}/transfers/")  # unfinished resumable transfers
        expired += 1
    return expired


def upload_sessions_resume_stalled(*, stalled_seconds: int, now: datetime | None = None) -> int:
    """Send the processing of every session `processing` with no file done for `stalled_seconds`
    again: its message was lost (the broker restarted empty) or its worker died or gave up during a
    database outage. Processing skips what is done, so a second run is harmless. Audited."""
    cutoff = (now or timezone.now()) - timedelta(seconds=stalled_seconds)
    stalled = list(UploadSession.objects.filter(status=UploadSessionStatus.PROCESSING, last_activity_at__lt=cutoff)
                   .values_list("pk", flat=True))
    for session_id in stalled:
        with transaction.atomic():
            UploadSession.objects.filter(pk=session_id).update(last_activity_at=timezone.now())
            audit_record(action=AuditAction.UPLOAD_RESUME, actor=Actor.system("uploads.reconcile"),
                         object_type="upload_session", object_id=session_id,
                         detail={"stalled_seconds": stalled_seconds})
            enqueue_on_commit("apps.uploads.tasks.upload_session_process", tenant=current_tenant(), work=WorkKind.INGEST,
                              args=(str(session_id),))
    return len(stalled)


def _stored_by_an_earlier_run(upload_file: UploadFile, outcome: IngestOutcome) -> bool:
    """An "already stored" answer for an instance this session's processing stored itself: a worker
    that died between the instance's commit and its item's record, then the run again (at least once,
    docs/architecture.md). The instance was indexed after the session was finished and no item of the
    session names it yet, so the technologist is told it was stored, not that it was a duplicate."""
    from apps.archive.models import Instance
    from apps.audit.models import AuditEvent

    finished = (AuditEvent.objects.filter(action=AuditAction.UPLOAD_FINISH, object_type="upload_session",
                                          object_id=str(upload_file.session_id))
                .values_list("occurred_at", flat=True).first())
    if finished is None or UploadItem.objects.filter(session_id=upload_file.session_id,
                                                     sop_instance_uid=outcome.sop_instance_uid).exists():
        return False
    return Instance.objects.filter(sop_instance_uid=outcome.sop_instance_uid, created_at__gte=finished).exists()


def _record_item(upload_file: UploadFile, member_name: str, outcome: IngestOutcome) -> None:
    if outcome.status == UploadItemStatus.DUPLICATE and _stored_by_an_earlier_run(upload_file, outcome):
        outcome = dataclasses.replace(outcome, status=UploadItemStatus.STORED)
    counter = {
        UploadItemStatus.STORED.value: "items_stored",
        UploadItemStatus.DUPLICATE.value: "items_duplicate",
        UploadItemStatus.FAILED.value: "items_failed",
    }[outcome.status]
    with transaction.atomic():
        _, created = UploadItem.objects.get_or_create(
            upload_file=upload_file, member_name=member_name[:500],
            defaults={
                "session_id": upload_file.session_id, "status": outcome.status,
                "failure_code": outcome.failure_code[:64], "failure_detail": outcome.failure_detail[:500],
                "sop_instance_uid": outcome.sop_instance_uid, "study_instance_uid": outcome.study_instance_uid,
            },
        )
        if created:
            UploadSession.objects.filter(pk=upload_file.session_id).update(**{counter: F(counter) + 1})


def _already_processed(upload_file: UploadFile) -> set[str]:
    return set(upload_file.items.values_list("member_name", flat=True))


def _zip_limits() -> ZipLimits:
    return ZipLimits(
        max_members=settings.UPLOAD_ZIP_MAX_MEMBERS,
        max_total_bytes=settings.UPLOAD_ZIP_MAX_EXPANDED_BYTES,
        max_member_bytes=settings.UPLOAD_MAX_FILE_BYTES,
    )


def _process_file(upload_file: UploadFile, actor: Actor) -> None:
    storage = storage_for(current_tenant())
    done = _already_processed(upload_file)
    with tempfile.TemporaryFile() as local:
        try:
            for chunk in storage.get_stream(upload_file.staging_key):
                local.write(chunk)
        except ObjectNotFound:
            _finish_file(upload_file, "refuse", "staging_missing", "The uploaded bytes are gone.")
            return
        local.seek(0)
        if is_zip(local):
            try:
                for member, content in iter_zip_members(local, limits=_zip_limits()):
                    if member.name in done:
                        continue
                    if content is None:
                        outcome = IngestOutcome.failed(member.refused_code or "refused", member.refused_reason or "")
                    else:
                        outcome = ingest_one(stream=content, actor=actor)
                    _record_item(upload_file, member.name, outcome)
            except UnsafeArchive as refused:
                _finish_file(upload_file, "refuse", refused.code, str(refused))
                return
        elif upload_file.name not in done:
            _record_item(upload_file, upload_file.name, ingest_one(stream=local, actor=actor))
    _finish_file(upload_file, "finish")


def _finish_file(upload_file: UploadFile, event: str, error_code: str = "", error_detail: str = "") -> None:
    def count_done(moved: Move) -> None:
        # Progress is activity: the reconciliation sweep leaves a session that is moving alone.
        UploadSession.objects.filter(pk=upload_file.session_id).update(
            files_done=F("files_done") + 1, last_activity_at=timezone.now())

    with contextlib.suppress(InvalidTransition):  # another worker finished it first: counted once
        move(upload_file, UPLOAD_FILE_WORKFLOW, event, record=count_done,
             error_code=error_code, error_detail=error_detail[:500])
    # Staging bytes are dropped only once the file's outcome is recorded.
    storage_for(current_tenant()).delete(upload_file.staging_key)


def upload_session_process(*, session_id: uuid.UUID) -> UploadSession | None:
    """Ingest every file not yet done; safe to run again after a crash (done items are skipped)."""
    session = UploadSession.objects.filter(pk=session_id).first()
    if session is None or session.status != UploadSessionStatus.PROCESSING:
        return session
    actor = Actor(kind="user", identifier=str(session.created_by_id), name=session.created_by.username)
    for upload_file in session.files.filter(status=UploadFileStatus.RECEIVED).order_by("id"):
        _process_file(upload_file, actor)
    with transaction.atomic():
        session = _open_session_for_update(session_id)
        if session.status == UploadSessionStatus.PROCESSING:
            audited_move(
                session, UPLOAD_SESSION_WORKFLOW, "complete", actor=actor, action=AuditAction.UPLOAD_COMPLETE,
                object_type="upload_session",
                detail={"stored": session.items_stored, "duplicate": session.items_duplicate, "failed": session.items_failed},
                finished_at=timezone.now(),
            )
    return session
