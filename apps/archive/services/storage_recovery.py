"""Storage hygiene and recovery: collect objects no index row names, rebuild the index from storage.

Both walk the tenant's `archive/` folder only, whose layout (apps.archive.keys) says what each
object is; nothing else the tenant keeps in storage (upload staging, films, consult PDFs) is
listed, so nothing else can be removed.

- `orphaned_objects_collect` removes stored instances that no index row (live or soft-deleted)
  names, and rendered frames and thumbnails of such instances, once older than a safety age: an
  ingest writes its objects before its index transaction commits, so a young object without a row
  may be one being indexed right now. A crash between write and commit, a refused copy whose
  removal failed, or a purge cut short between its rows and its objects leave such objects.
- `archive_reindex` does the opposite for instances: it indexes again, through the ingest's own
  indexer, every stored instance no row names, and verifies the checksum of those a row names.

Unindexed instances are what both act on, so a lost index (a database restored from an older
backup) would look like many orphans: the collector then removes no instance at all while more
than `max_unreferenced_instances` are due, and says so in its audit event; `archive_reindex` is the
remedy. The two never run at once for a tenant (a PostgreSQL advisory lock), so the collector
never removes an object that a reindex is restoring.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.archive.keys import ARCHIVE_PREFIX, instance_key_of_derived, is_instance_key
from apps.archive.models import Instance
from apps.archive.services.indexing import IndexRow, RowStatus, index_rows
from apps.archive.services.ingest import instance_index_entry
from apps.archive.services.storage_extras import rendered_cache_entries_forget
from apps.archive.spool import Spool
from apps.audit.actions import AuditAction
from apps.audit.models import Outcome
from apps.audit.services import Actor, audit_record
from apps.core.errors import DomainError
from apps.dicom.headers import InstanceRejected, read_instance_header
from apps.dicom.status import FailureReason
from apps.storage.backends import ListedObject, ObjectNotFound, StorageUnavailable
from apps.storage.tenant_storage import TenantStorage, storage_for
from tenants.context import current_schema_name, current_tenant

logger = logging.getLogger(__name__)

# First key of the advisory lock that keeps the collector and a reindex of one tenant apart (the
# second is the tenant's schema name, hashed).
_MAINTENANCE_LOCK_CLASS = 7_402_117
_LOOKUP_BATCH = 1000
REINDEX_BATCH = 200
_LISTED_IN_AUDIT = 50


class StorageMaintenanceBusy(DomainError):
    code = "storage_maintenance_busy"
    status = 409


@contextmanager
def _maintenance_lock() -> Iterator[None]:
    schema = current_schema_name()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_MAINTENANCE_LOCK_CLASS, schema])
        if not cursor.fetchone()[0]:
            raise StorageMaintenanceBusy(
                f"An orphan collection or a reindex of {schema} is running; try again when it has finished."
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_MAINTENANCE_LOCK_CLASS, schema])


def _named_keys(keys: Sequence[str]) -> set[str]:
    """The keys among `keys` that an instance row names, live or soft-deleted (a deleted row's object
    stays until the purge removes both)."""
    named: set[str] = set()
    for start in range(0, len(keys), _LOOKUP_BATCH):
        chunk = list(keys[start:start + _LOOKUP_BATCH])
        named.update(Instance.objects.filter(object_key__in=chunk).values_list("object_key", flat=True))
    return named


def _archive_objects(storage: TenantStorage) -> Iterator[ListedObject]:
    return storage.list_objects(ARCHIVE_PREFIX + "/")


# --- the collector -------------------------------------------------------------------------------------


@dataclass
class OrphanCollection:
    dry_run: bool
    scanned: int = 0
    instances_removed: int = 0
    derived_removed: int = 0
    bytes_removed: int = 0
    too_young: int = 0
    # Unreferenced instances that were due but kept because there were too many (see the module doc).
    instances_withheld: int = 0
    removed_keys: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return self.instances_removed + self.derived_removed


def orphaned_objects_collect(
    *, min_age_seconds: int, max_unreferenced_instances: int, dry_run: bool = False, actor: Actor,
    now: datetime | None = None,
) -> OrphanCollection:
    """Remove the tenant's stored instances no index row names, and the rendered frames and
    thumbnails of instances no row names, last written more than `min_age_seconds` ago.

    With more than `max_unreferenced_instances` such instances no instance is removed (derived
    images still are: they are made again on demand). `dry_run` removes nothing and reports what
    would go. Writes one audit event. Raises StorageMaintenanceBusy while a reindex runs."""
    if min_age_seconds < 0:
        raise ValueError(f"A safety age cannot be negative: {min_age_seconds}")
    storage = storage_for(current_tenant())
    cutoff = (now or timezone.now()) - timedelta(seconds=min_age_seconds)
    report = OrphanCollection(dry_run=dry_run)
    with _maintenance_lock():
        instance_candidates: list[ListedObject] = []
        derived_candidates: list[tuple[ListedObject, str]] = []
        for listed in _archive_objects(storage):
            report.scanned += 1
            if is_instance_key(listed.key):
                instance_key = listed.key
            else:
                derived_of = instance_key_of_derived(listed.key)
                if derived_of is None:
                    continue  # not laid out as anything this collector knows: never touched
                instance_key = derived_of
            if listed.modified_at > cutoff:
                report.too_young += 1
                continue
            if instance_key == listed.key:
                instance_candidates.append(listed)
            else:
                derived_candidates.append((listed, instance_key))
        named = _named_keys(
            [item.key for item in instance_candidates] + list({key for _, key in derived_candidates})
        )
        doomed_instances = [item for item in instance_candidates if item.key not in named]
        doomed_derived = [(item, key) for item, key in derived_candidates if key not in named]
        if len(doomed_instances) > max_unreferenced_instances:
            report.instances_withheld = len(doomed_instances)
            doomed_instances = []
        doomed = doomed_instances + [item for item, _ in doomed_derived]
        for item in doomed:
            if not dry_run:
                try:
                    storage.delete(item.key)
                except (OSError, StorageUnavailable):
                    logger.warning("Could not remove orphaned object %s", item.key, exc_info=True)
                    continue
            report.bytes_removed += item.size
            report.removed_keys.append(item.key)
            if is_instance_key(item.key):
                report.instances_removed += 1
            else:
                report.derived_removed += 1
        with transaction.atomic():
            if not dry_run:
                # Rendered-cache rows of images removed here go too, with their bytes off the count.
                rendered_cache_entries_forget(instance_object_keys=sorted({key for _, key in doomed_derived}))
            audit_record(
                action=AuditAction.STORAGE_ORPHANS_COLLECT, actor=actor, object_type="archive",
                outcome=Outcome.FAILURE if report.instances_withheld else Outcome.SUCCESS,
                detail={
                    "dry_run": dry_run, "min_age_seconds": min_age_seconds, "scanned": report.scanned,
                    "removed": report.removed, "instances_removed": report.instances_removed,
                    "derived_removed": report.derived_removed, "bytes_removed": report.bytes_removed,
                    "too_young": report.too_young, "instances_withheld": report.instances_withheld,
                    "max_unreferenced_instances": max_unreferenced_instances,
                    "keys": report.removed_keys[:_LISTED_IN_AUDIT],
                },
            )
    if report.instances_withheld:
        logger.error(
            "%s stored instances of %s have no index row: none removed (more than %s). Run "
            "`manage.py archive_reindex` if the index was lost.", report.instances_withheld,
            current_tenant().slug, max_unreferenced_instances,
        )
    return report


# --- the reindex ---------------------------------------------------------------------------------------


@dataclass
class ReindexSummary:
    scanned: int = 0
    already_indexed: int = 0
    restored: int = 0
    # Another object of the same SOP Instance UID is indexed, with the same bytes.
    duplicate_copies: int = 0
    # Refused by the indexer as a STOW-RS would be (another content under the same SOP Instance UID,
    # a contradicting patient identity, a series of another study): key → reason.
    refused: dict[str, str] = field(default_factory=dict)
    checksum_mismatches: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    restored_studies: set[str] = field(default_factory=set)


def _read_and_hash(storage: TenantStorage, key: str, spool: Spool | None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in storage.get_stream(key):
        digest.update(chunk)
        size += len(chunk)
        if spool is not None:
            spool.write(chunk)
    return size, digest.hexdigest()


def _restore_batch(rows: list[IndexRow], summary: ReindexSummary, actor: Actor) -> None:
    if not rows:
        return
    with transaction.atomic():
        # No quota: these instances were accepted once; restoring them is not new storage use.
        outcomes = index_rows(rows=rows).outcomes
        restored = [outcome for outcome in outcomes if outcome.status == RowStatus.STORED]
        studies = sorted({outcome.row.attributes.study_instance_uid for outcome in restored})
        for outcome in outcomes:
            if outcome.status == RowStatus.DUPLICATE:
                summary.duplicate_copies += 1
            elif outcome.status != RowStatus.STORED:
                summary.refused[outcome.row.object_key] = f"{outcome.status}: {outcome.detail}"
                logger.warning("Not restored %s: %s (%s)", outcome.row.object_key, outcome.status, outcome.detail)
        audit_record(
            action=AuditAction.ARCHIVE_REINDEX_RESTORE, actor=actor, object_type="archive",
            detail={"instances": len(rows), "restored": len(restored), "studies": studies[:_LISTED_IN_AUDIT]},
        )
    summary.restored += len(restored)
    summary.restored_studies.update(studies)


def archive_reindex(*, actor: Actor, batch_size: int = REINDEX_BATCH) -> ReindexSummary:
    """Rebuild the tenant's index from its stored instances; safe to run again.

    Every stored instance no row names is read again (its header only, up to the pixel data) and
    indexed through the ingest's indexer, in batches of one transaction each; an instance a row
    names has its SHA-256 and size checked against the row's (a mismatch is reported, never
    overwritten). Writes an audit event per restored batch and one with the totals. Raises
    StorageMaintenanceBusy while the orphan collector runs."""
    storage = storage_for(current_tenant())
    summary = ReindexSummary()
    with _maintenance_lock():
        pending: list[ListedObject] = []

        def work_through(listed_objects: list[ListedObject]) -> None:
            named = dict(
                Instance.objects.filter(object_key__in=[item.key for item in listed_objects])
                .values_list("object_key", "sha256")
            )
            sizes = dict(
                Instance.objects.filter(object_key__in=list(named)).values_list("object_key", "size_bytes")
            )
            rows: list[IndexRow] = []
            for item in listed_objects:
                try:
                    if item.key in named:
                        summary.already_indexed += 1
                        size, sha256 = _read_and_hash(storage, item.key, None)
                        if (sha256, size) != (named[item.key], sizes[item.key]):
                            summary.checksum_mismatches.append(item.key)
                        continue
                    row = _index_row_from_storage(storage, item.key)
                except ObjectNotFound:
                    continue  # removed since it was listed (a purge)
                except InstanceRejected as rejected:
                    logger.warning("Unreadable stored instance %s: %s", item.key, rejected.detail)
                    summary.unreadable.append(item.key)
                    continue
                rows.append(row)
            _restore_batch(rows, summary, actor)

        for listed in _archive_objects(storage):
            if not is_instance_key(listed.key):
                continue
            summary.scanned += 1
            pending.append(listed)
            if len(pending) >= batch_size:
                work_through(pending)
                pending = []
        work_through(pending)
        with transaction.atomic():
            audit_record(
                action=AuditAction.ARCHIVE_REINDEX, actor=actor, object_type="archive",
                outcome=(Outcome.FAILURE if summary.checksum_mismatches or summary.unreadable or summary.refused
                         else Outcome.SUCCESS),
                detail={
                    "scanned": summary.scanned, "already_indexed": summary.already_indexed,
                    "restored": summary.restored, "duplicate_copies": summary.duplicate_copies,
                    "refused": dict(list(summary.refused.items())[:_LISTED_IN_AUDIT]),
                    "checksum_mismatches": summary.checksum_mismatches[:_LISTED_IN_AUDIT],
                    "unreadable": summary.unreadable[:_LISTED_IN_AUDIT],
                    "studies": sorted(summary.restored_studies)[:_LISTED_IN_AUDIT],
                },
            )
    return summary


def _index_row_from_storage(storage: TenantStorage, key: str) -> IndexRow:
    """The index row of one stored instance, made as the ingest makes it (instance_index_entry)."""
    with Spool(memory_limit=settings.STOW_SPOOL_MEMORY_BYTES, size_limit=2**62) as spool:
        size, sha256 = _read_and_hash(storage, key, spool)
        header = read_instance_header(
            spool.buffer(), spool.size, stream=spool.stream(),
            assign_missing_patient_id=settings.ARCHIVE_ASSIGN_MISSING_PATIENT_ID,
        )
        attributes, metadata_json = instance_index_entry(header)
    parts = key.split("/")
    if (attributes.study_instance_uid, attributes.series_instance_uid, attributes.sop_instance_uid) != tuple(parts[1:4]):
        raise InstanceRejected(FailureReason.CANNOT_UNDERSTAND, "its UIDs are not those its key names")
    return IndexRow(attributes=attributes, metadata_json=metadata_json, object_key=key, size_bytes=size, sha256=sha256)
