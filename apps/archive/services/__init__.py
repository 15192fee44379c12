"""Archive use cases: writes, each owning its transaction, and reads of patient data (reads.py);
each writes its audit event."""

from apps.archive.services.bulk import BulkLoadSummary, index_bulk_load
from apps.archive.services.deletion import PurgeSummary, deleted_purge, series_delete, study_delete
from apps.archive.services.ingest import (
    FailedInstance,
    InvalidMultipartBody,
    RequestBodyTooLarge,
    StoredInstance,
    StoreReport,
    instance_store_file,
    instances_store,
)
from apps.archive.services.reads import patient_data_read_record
from apps.archive.services.stability import studies_due_for_stability, studies_mark_stable
from apps.archive.services.storage_extras import (
    RenderedCacheEviction,
    rendered_cache_evict,
    staged_upload_bytes_change,
)
from apps.archive.services.storage_recovery import (
    OrphanCollection,
    ReindexSummary,
    StorageMaintenanceBusy,
    archive_reindex,
    orphaned_objects_collect,
)

__all__ = [
    "BulkLoadSummary",
    "FailedInstance",
    "InvalidMultipartBody",
    "OrphanCollection",
    "PurgeSummary",
    "ReindexSummary",
    "RenderedCacheEviction",
    "RequestBodyTooLarge",
    "StoreReport",
    "StorageMaintenanceBusy",
    "StoredInstance",
    "archive_reindex",
    "deleted_purge",
    "index_bulk_load",
    "instance_store_file",
    "instances_store",
    "orphaned_objects_collect",
    "patient_data_read_record",
    "rendered_cache_evict",
    "series_delete",
    "staged_upload_bytes_change",
    "studies_due_for_stability",
    "studies_mark_stable",
    "study_delete",
]
