"""Stored instance metadata: DICOM JSON text whose BulkDataURIs are relative to the DICOMweb root.

The service root (scheme, host, ``/dicomweb``) is known only when a request is answered — a tenant may
be reached on several domains — so URIs are stored as paths (``/studies/…/bulkdata/7FE00010``) and
made absolute with one string replacement. The replaced text cannot occur anywhere else: inside a
JSON string every double quote is escaped, so ``"BulkDataURI":"/`` is always the key and the start
of its value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

_RELATIVE_BULK_DATA_URI = '"BulkDataURI":"/'


def bulk_data_path(*, study_instance_uid: str, series_instance_uid: str, sop_instance_uid: str, tag_path: str) -> str:
    return (
        f"/studies/{study_instance_uid}/series/{series_instance_uid}/instances/{sop_instance_uid}"
        f"/bulkdata/{tag_path}"
    )


def with_service_root(metadata_text: str, service_root: str) -> str:
    """Make the BulkDataURIs of stored metadata absolute under `service_root` (no trailing slash)."""
    if _RELATIVE_BULK_DATA_URI not in metadata_text:
        return metadata_text
    escaped_root = json.dumps(service_root.rstrip("/"))[1:-1]
    return metadata_text.replace(_RELATIVE_BULK_DATA_URI, '"BulkDataURI":"' + escaped_root + "/")


def metadata_array(metadata_texts: Iterable[str], service_root: str) -> str:
    """The /metadata answer: a JSON array of the instances' stored objects (PS3.18 §10.4.1.1.2)."""
    return with_service_root("[" + ",".join(metadata_texts) + "]", service_root)
