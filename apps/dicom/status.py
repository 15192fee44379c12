"""Status codes a STOW-RS response reports per instance (no Django imports).

Failure Reason (0008,1197) and Warning Reason (0008,1196) values, PS3.18 §10.5.3 (Table 10.5.3-1
"Store Instances Response Attributes") with the storage status codes of PS3.4 Annex B.2.3 and the
DIMSE status codes of PS3.7 Annex C.
"""

from __future__ import annotations

from enum import IntEnum


class FailureReason(IntEnum):
    """Why an instance was not stored (Failure Reason (0008,1197))."""

    PROCESSING_FAILURE = 0x0110
    DUPLICATE_SOP_INSTANCE = 0x0111  # PS3.7 §C.5.2: same SOP Instance UID, different content
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700  # PS3.4 §B.2.3: refused, out of resources (quota, size limits)
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900  # also: Study Instance UID differs from the request's
    CANNOT_UNDERSTAND = 0xC000  # not DICOM, truncated, unreadable, malformed UIDs
    # PS3.4 §B.2.3 leaves the xxx of "Cxxx Error: Cannot understand" to the implementation: the
    # instance's Patient ID, Issuer, Name or Birth Date contradict the stored study's.
    PATIENT_IDENTITY_CONFLICT = 0xC410
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122


class WarningReason(IntEnum):
    """Why an instance was stored with a warning (Warning Reason (0008,1196))."""

    COERCION_OF_DATA_ELEMENTS = 0xB000  # the index holds a value the instance did not (assigned Patient ID)
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007
