"""Archive use cases (writes). Each owns its transaction and writes its audit event."""

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

__all__ = [
    "BulkLoadSummary",
    "FailedInstance",
    "InvalidMultipartBody",
    "PurgeSummary",
    "RequestBodyTooLarge",
    "StoreReport",
    "StoredInstance",
    "deleted_purge",
    "index_bulk_load",
    "instance_store_file",
    "instances_store",
    "patient_data_read_record",
    "series_delete",
    "studies_due_for_stability",
    "studies_mark_stable",
    "study_delete",
]
