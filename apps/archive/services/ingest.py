"""Ingest: receive DICOM instances, keep their bytes untouched in object storage, index them.

The data path of an upload (docs/architecture.md), per STOW-RS request (or uploaded file):

1. each part is received into a `Spool` (memory up to a limit, then a temporary file) while it is
   hashed — the request is never held whole;
2. its header is checked and read without decoding pixel data (apps.dicom.headers), its DICOM JSON
   metadata rendered once (apps.dicom.json_model);
3. the original bytes are written to storage under a key made of the UIDs and a fresh upload id,
   before the next part is read; making them durable (fsync on the filesystem backend) runs in the
   background meanwhile;
4. when every part is in storage, the batch is indexed in one transaction (services.indexing), the
   request's audit event and the intent of the derived work (thumbnails of new series, an outbox
   row: tenants.outbox) written in it; the commit waits until every object is durable;
5. objects that the index refused (duplicates, conflicts, quota) are removed again.

A crash before step 4 commits leaves only objects no row names (harmless, never served); a 200 or
202 is answered only after the commit, so an accepted instance is both stored and indexed. Once the
commit happened nothing removes an object a row names: an error after it (a broker that cannot be
reached, say) is not a reason to undo the store.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.archive.keys import instance_object_key, new_upload_id
from apps.archive.metadata import bulk_data_path
from apps.archive.models import Study, StudyIdentityConflict
from apps.archive.selectors import storage_usage
from apps.archive.services.indexing import IndexOutcome, IndexRow, RowStatus, index_rows
from apps.archive.spool import PartTooLarge, Spool
from apps.audit.actions import AuditAction
from apps.audit.models import Outcome
from apps.audit.services import Actor, audit_record
from apps.core.errors import DomainError
from apps.dicom.headers import (
    PART10_PREFIX,
    IndexAttributes,
    InstanceHeader,
    InstanceRejected,
    attribute_with_nul,
    index_attributes,
    lacks_only_the_preamble,
    read_instance_header,
)
from apps.dicom.json_model import dataset_to_json, dumps, pixel_data_entry
from apps.dicom.multipart import MultipartError, TruncatedPart, parse_media_type
from apps.dicom.status import FailureReason, WarningReason
from apps.storage.backends import StorageUnavailable
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.context import current_tenant
from tenants.deployment import Quotas, WorkKind, policy_for
from tenants.queues import enqueue_on_commit

logger = logging.getLogger(__name__)

DICOM_MEDIA_TYPE = "application/dicom"
# A write refused for want of space (a full disk, a filled quota on the filesystem backend's volume).
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class IncomingPart(Protocol):
    """One received object: a multipart body part, or an uploaded file."""

    @property
    def content_type(self) -> str: ...

    def chunks(self) -> Iterator[bytes]: ...

    def drain(self) -> int: ...


class RequestBodyTooLarge(DomainError):
    code = "payload_too_large"
    status = 413


class InvalidMultipartBody(DomainError):
    code = "invalid_multipart"
    status = 400


@dataclass(frozen=True)
class StoredInstance:
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    warnings: tuple[tuple[WarningReason, str], ...] = ()
    already_stored: bool = False


@dataclass(frozen=True)
class FailedInstance:
    sop_class_uid: str
    sop_instance_uid: str
    reason: FailureReason
    detail: str


@dataclass
class StoreReport:
    stored: list[StoredInstance] = field(default_factory=list)
    failed: list[FailedInstance] = field(default_factory=list)

    @property
    def study_instance_uids(self) -> list[str]:
        return list(dict.fromkeys(item.study_instance_uid for item in self.stored))


# --- quota pre-check ----------------------------------------------------------------------------------


class _QuotaPrecheck:
    """Refuses a part before its bytes are stored when the quota is clearly used up.

    Advisory only: the authoritative check runs again under the archive lock when indexing.
    """

    def __init__(self, quotas: Quotas) -> None:
        self.quotas = quotas
        self._loaded = False
        self._stored_bytes = 0
        self._studies_this_month = 0
        self._known_studies: dict[str, bool] = {}
        self._new_studies: set[str] = set()

    def _load(self) -> None:
        # The rendered cache and staged uploads count toward the storage quota too.
        self._stored_bytes = storage_usage().total_bytes
        month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        self._studies_this_month = Study.objects.filter(created_at__gte=month_start).count()
        self._loaded = True

    def refusal(self, *, study_instance_uid: str, size: int) -> str | None:
        if self.quotas.storage_bytes is None and self.quotas.studies_per_month is None:
            return None
        if not self._loaded:
            self._load()
        if self.quotas.studies_per_month is not None and study_instance_uid not in self._new_studies:
            exists = self._known_studies.get(study_instance_uid)
            if exists is None:
                exists = Study.objects.filter(study_instance_uid=study_instance_uid, deleted_at__isnull=True).exists()
                self._known_studies[study_instance_uid] = exists
            if not exists:
                if self._studies_this_month + len(self._new_studies) >= self.quotas.studies_per_month:
                    return f"the plan's quota of {self.quotas.studies_per_month} new studies a month is used up"
                self._new_studies.add(study_instance_uid)
        if self.quotas.storage_bytes is not None:
            if self._stored_bytes + size > self.quotas.storage_bytes:
                return f"the plan's storage quota of {self.quotas.storage_bytes} bytes would be exceeded"
            self._stored_bytes += size
        return None


# --- one part --------------------------------------------------------------------------------------------


def _metadata(header: InstanceHeader) -> dict[str, Any]:
    """The instance's DICOM JSON, its BulkDataURIs relative to the service root (apps.archive.metadata)."""

    def uri(tag_path: str) -> str:
        return bulk_data_path(
            study_instance_uid=header.study_instance_uid, series_instance_uid=header.series_instance_uid,
            sop_instance_uid=header.sop_instance_uid, tag_path=tag_path,
        )

    document = dataset_to_json(header.dataset, bulk_data_uri=uri)
    if header.pixel_data is not None:
        tag = f"{header.pixel_data.tag:08X}"
        document[tag] = pixel_data_entry(header.pixel_data.vr, uri(tag))
    return document


def instance_index_entry(header: InstanceHeader) -> tuple[IndexAttributes, str]:
    """What the index keeps of an instance: its index attributes and its DICOM JSON metadata text.

    The one way a header becomes an index entry, for STOW-RS, uploads and `archive_reindex` alike.
    Raises InstanceRejected (0xC000) when an indexed text holds a NUL character."""
    document = _metadata(header)
    attributes = index_attributes(header, document)
    with_nul = attribute_with_nul(attributes)
    if with_nul:
        raise InstanceRejected(FailureReason.CANNOT_UNDERSTAND, f"its {with_nul} contains a NUL character (PS3.5 §6.2)",
                               sop_class_uid=header.sop_class_uid, sop_instance_uid=header.sop_instance_uid)
    return attributes, dumps(document)


class _Ingest:
    """The state of one ingest request: where bytes go, what was written, what was decided."""

    def __init__(self, *, actor: Actor, expected_study_instance_uid: str | None, via: str) -> None:
        self.tenant = current_tenant()
        self.storage: TenantStorage = storage_for(self.tenant)
        self.quotas = policy_for(self.tenant).quotas()
        self.precheck = _QuotaPrecheck(self.quotas)
        self.actor = actor
        self.expected_study_instance_uid = expected_study_instance_uid
        self.via = via
        self.staged: list[IndexRow] = []
        self.failed: list[FailedInstance] = []
        self.written_keys: list[str] = []
        self.syncing: list[Future[None]] = []
        self.committed = False

    def fail(self, reason: FailureReason, detail: str, *, sop_class_uid: str = "", sop_instance_uid: str = "") -> None:
        self.failed.append(FailedInstance(sop_class_uid, sop_instance_uid, reason, detail))

    def receive(self, part: IncomingPart) -> None:
        media_type = part.content_type.strip()
        if media_type:
            try:
                essence = parse_media_type(media_type).essence
            except ValueError:
                essence = media_type
            if essence != DICOM_MEDIA_TYPE:
                part.drain()
                self.fail(FailureReason.CANNOT_UNDERSTAND, f"a part of type {media_type!r} is not a DICOM instance "
                          "(only application/dicom parts are accepted)")
                return
        with Spool(memory_limit=settings.STOW_SPOOL_MEMORY_BYTES, size_limit=settings.STOW_MAX_PART_BYTES) as spool:
            try:
                for chunk in part.chunks():
                    spool.write(chunk)
            except PartTooLarge:
                part.drain()
                self.fail(FailureReason.OUT_OF_RESOURCES,
                          f"the instance is larger than the {settings.STOW_MAX_PART_BYTES} bytes accepted")
                return
            self._stage(spool)

    def _stage(self, spool: Spool) -> None:
        coerced: tuple[tuple[WarningReason, str], ...] = ()
        if lacks_only_the_preamble(spool.buffer(), spool.size):
            spool.prepend(PART10_PREFIX)
            coerced = ((WarningReason.COERCION_OF_DATA_ELEMENTS,
                        "the 128-byte preamble and 'DICM' prefix were missing and have been added"),)
        try:
            header = read_instance_header(
                spool.buffer(), spool.size, stream=spool.stream(),
                assign_missing_patient_id=settings.ARCHIVE_ASSIGN_MISSING_PATIENT_ID,
            )
        except InstanceRejected as rejected:
            self.fail(rejected.reason, rejected.detail, sop_class_uid=rejected.sop_class_uid,
                      sop_instance_uid=rejected.sop_instance_uid)
            return
        identity = {"sop_class_uid": header.sop_class_uid, "sop_instance_uid": header.sop_instance_uid}
        if self.expected_study_instance_uid and header.study_instance_uid != self.expected_study_instance_uid:
            self.fail(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                      f"its Study Instance UID {header.study_instance_uid} is not the study of the request URL "
                      f"({self.expected_study_instance_uid})", **identity)
            return
        refusal = self.precheck.refusal(study_instance_uid=header.study_instance_uid, size=spool.size)
        if refusal:
            self.fail(FailureReason.OUT_OF_RESOURCES, refusal, **identity)
            return
        try:
            attributes, metadata_json = instance_index_entry(header)
        except InstanceRejected as rejected:
            self.fail(rejected.reason, rejected.detail, **identity)
            return
        key = instance_object_key(
            study_instance_uid=header.study_instance_uid, series_instance_uid=header.series_instance_uid,
            sop_instance_uid=header.sop_instance_uid, upload_id=new_upload_id(),
        )
        self.written_keys.append(key)
        buffer = spool.buffer()
        try:
            if isinstance(buffer, bytes):
                stored = self.storage.put_bytes(key, buffer, content_type=DICOM_MEDIA_TYPE, sync=False)
            else:
                stored = self.storage.put_stream(key, spool.stream(), content_type=DICOM_MEDIA_TYPE, sync=False)
        except OSError as error:
            if error.errno not in STORAGE_FULL_ERRNOS:
                raise
            # The backend removed its partial file. This instance fails as out of resources (PS3.4
            # §B.2.3); the instances already written stay, and are indexed, as the client is told.
            self.written_keys.remove(key)
            self.fail(FailureReason.OUT_OF_RESOURCES, "the archive's storage is full; nothing of this instance was kept",
                      **identity)
            return
        self.syncing.append(_object_sync_pool().submit(self.storage.sync, [key]))
        row = IndexRow(
            attributes=attributes, metadata_json=metadata_json, object_key=key, size_bytes=stored.size,
            sha256=stored.sha256, warnings=header.warnings + coerced,
        )
        self.staged.append(row)

    def index(self) -> StoreReport:
        report = StoreReport(failed=list(self.failed))
        refused_keys: list[str] = []
        with transaction.atomic():
            # The first thing run after the commit, before any other after-commit work: from then on
            # rows name these objects, and no later error may remove them (see abandon()).
            transaction.on_commit(self._mark_committed)
            summary = index_rows(rows=self.staged, quotas=self.quotas)
            for outcome in summary.outcomes:
                attributes = outcome.row.attributes
                if outcome.status in (RowStatus.STORED, RowStatus.DUPLICATE):
                    report.stored.append(StoredInstance(
                        sop_class_uid=attributes.sop_class_uid, sop_instance_uid=attributes.sop_instance_uid,
                        study_instance_uid=attributes.study_instance_uid,
                        series_instance_uid=attributes.series_instance_uid, warnings=outcome.row.warnings,
                        already_stored=outcome.status == RowStatus.DUPLICATE,
                    ))
                else:
                    report.failed.append(FailedInstance(
                        attributes.sop_class_uid, attributes.sop_instance_uid, _FAILURE_FOR_STATUS[outcome.status],
                        outcome.detail,
                    ))
                if outcome.status != RowStatus.STORED:
                    refused_keys.append(outcome.row.object_key)
            _identity_conflicts_record(
                outcomes=[item for item in summary.outcomes if item.status == RowStatus.IDENTITY_CONFLICT],
                actor=self.actor, via=self.via,
            )
            new_count = len(summary.stored)
            audit_record(
                action=AuditAction.ARCHIVE_STORE, actor=self.actor, object_type="study",
                object_id=(report.study_instance_uids or [""])[0],
                outcome=Outcome.SUCCESS if report.stored else Outcome.FAILURE,
                detail={
                    "via": self.via, "stored": new_count, "already_stored": len(report.stored) - new_count,
                    "failed": len(report.failed), "studies": report.study_instance_uids[:50],
                    "series": sorted({item.series_instance_uid for item in report.stored})[:50],
                    "failure_reasons": sorted({f"{item.reason:04X}" for item in report.failed}),
                },
            )
            # A first thumbnail as soon as a series appears; the study-stable event renders the
            # final ones (see apps.archive.apps). One task per new series, not per instance.
            for study_id, series_ids in summary.new_series_by_study.items():
                enqueue_on_commit(
                    "apps.archive.tasks.study_derivatives_warm", tenant=self.tenant, work=WorkKind.INGEST,
                    args=(study_id, sorted(series_ids)),
                )
            # Rows that name an object commit only once it is durable (docs/security.md); the syncs ran
            # while the rows were written. A failed sync raises here and rolls the rows back.
            for pending in self.syncing:
                pending.result()
        # Outside the transaction: these objects are this request's own copies that no row names.
        self._delete(refused_keys)
        return report

    def _delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                self.storage.delete(key)
            except (OSError, StorageUnavailable):
                logger.warning("Could not remove unindexed object %s; it is never served", key, exc_info=True)

    def _mark_committed(self) -> None:
        self.committed = True

    def abandon(self) -> None:
        """Remove every object this request wrote, but only if its index transaction rolled back (or
        never ran): once the rows committed, their objects are the archive's, whatever fails later."""
        if not self.committed:
            self._delete(self.written_keys)


_sync_pool: tuple[int, ThreadPoolExecutor] | None = None


def _object_sync_pool() -> ThreadPoolExecutor:
    """Threads that make written objects durable (fsync releases the GIL), one pool per process
    (made on first use, and again after a fork: a pool's threads do not survive one)."""
    global _sync_pool
    if _sync_pool is None or _sync_pool[0] != os.getpid():
        _sync_pool = (os.getpid(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="object-sync"))
    return _sync_pool[1]


_FAILURE_FOR_STATUS = {
    RowStatus.IDENTITY_CONFLICT: FailureReason.PATIENT_IDENTITY_CONFLICT,
    RowStatus.CONFLICT: FailureReason.DUPLICATE_SOP_INSTANCE,
    RowStatus.QUOTA: FailureReason.OUT_OF_RESOURCES,
    RowStatus.SERIES_IN_OTHER_STUDY: FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
}


def _identity_conflicts_record(*, outcomes: list[IndexOutcome], actor: Actor, via: str) -> None:
    """Flag each study an instance with a contradicting patient identity was refused for, keep the
    conflicting values for quality control, and audit it (inside the ingest transaction).

    The refused instance's own study may not exist (its first instance was refused too, e.g. by a
    quota): then only the audit row tells of it."""
    by_study: dict[str, list[IndexOutcome]] = {}
    for outcome in outcomes:
        by_study.setdefault(outcome.row.attributes.study_instance_uid, []).append(outcome)
    now = timezone.now()
    for study_instance_uid, refused in by_study.items():
        study = Study.objects.filter(study_instance_uid=study_instance_uid, deleted_at__isnull=True).first()
        if study is not None:
            StudyIdentityConflict.objects.bulk_create([
                StudyIdentityConflict(
                    study=study, sop_instance_uid=item.row.attributes.sop_instance_uid,
                    sop_class_uid=item.row.attributes.sop_class_uid,
                    series_instance_uid=item.row.attributes.series_instance_uid,
                    attributes=item.contradictions, via=via,
                )
                for item in refused
            ])
            Study.objects.filter(pk=study.pk, identity_conflict_at__isnull=True).update(identity_conflict_at=now)
        audit_record(
            action=AuditAction.ARCHIVE_IDENTITY_CONFLICT, actor=actor, object_type="study", object_id=study_instance_uid,
            outcome=Outcome.FAILURE,
            detail={
                "via": via, "refused": len(refused),
                "instances": [item.row.attributes.sop_instance_uid for item in refused][:50],
                # Names only: the values are patient data, kept in the tenant's StudyIdentityConflict rows.
                "attributes": sorted({keyword for item in refused for keyword in item.contradictions}),
            },
        )


def instances_store(
    *,
    parts: Iterable[IncomingPart],
    actor: Actor,
    expected_study_instance_uid: str | None = None,
    via: str = "stow-rs",
) -> StoreReport:
    """Store and index the instances of a STOW-RS request (PS3.18 §10.5).

    Per-instance problems become FailedInstance entries with their PS3.18 failure reason. A body
    that is not multipart at all raises InvalidMultipartBody (400), one over the size limit
    RequestBodyTooLarge (413): in both cases every object this request wrote is removed again.
    A body that ends inside a part fails that part (0xC000) and keeps the complete ones.
    """
    ingest = _Ingest(actor=actor, expected_study_instance_uid=expected_study_instance_uid, via=via)
    received_any = False
    try:
        iterator = iter(parts)
        while True:
            try:
                part = next(iterator)
            except StopIteration:
                break
            except TruncatedPart as error:
                ingest.fail(FailureReason.CANNOT_UNDERSTAND, f"the request body is cut off: {error.detail}")
                break
            except MultipartError as error:
                if received_any:
                    ingest.fail(FailureReason.CANNOT_UNDERSTAND, f"the rest of the body is malformed: {error.detail}")
                    break
                raise InvalidMultipartBody(error.detail, code=error.code) from error
            received_any = True
            try:
                ingest.receive(part)
            except TruncatedPart as error:
                ingest.fail(FailureReason.CANNOT_UNDERSTAND, f"the instance is cut off: {error.detail}")
                break
        if not received_any and not ingest.failed:
            raise InvalidMultipartBody("the multipart body holds no parts", code="empty_multipart")
        return ingest.index()
    except BaseException:
        ingest.abandon()
        raise


@dataclass
class StreamPart:
    """A file-like object seen as one incoming part."""

    stream: BinaryIO
    read_size: int = 1024 * 1024
    content_type: str = DICOM_MEDIA_TYPE

    def chunks(self) -> Iterator[bytes]:
        while chunk := self.stream.read(self.read_size):
            yield chunk

    def drain(self) -> int:
        return sum(len(chunk) for chunk in self.chunks())


def instance_store_file(*, stream: BinaryIO, actor: Actor, via: str = "upload") -> StoreReport:
    """Store and index one DICOM file (a browser or zip upload) through the same path as STOW-RS."""
    return instances_store(parts=[StreamPart(stream)], actor=actor, via=via)

