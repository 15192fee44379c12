"""Why a file or a zip member was refused, in words a technologist understands: the one table from
the server's failure codes (UploadItem.failure_code, UploadFile.error_code, the tus endpoints'
error codes) to a translated sentence. The upload page shows it beside the server's own detail;
docs/uploads.md lists it."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

REFUSAL_REASONS: dict[str, Promise] = {
    # The archive's ingest (FailureReason of apps.dicom.status, lower-cased).
    "cannot_understand": _("Not a readable DICOM file: it is not DICOM, it is cut short, or it is damaged."),
    "patient_identity_conflict": _("Its patient details differ from the study already stored under the same "
                                   "Study Instance UID (another patient's study UID)."),
    "data_set_does_not_match_sop_class": _("Its contents do not fit its DICOM type, or its series belongs to another study."),
    "duplicate_sop_instance": _("An image with the same SOP Instance UID but different contents is already stored."),
    "sop_class_not_supported": _("This kind of DICOM object is not accepted by the archive."),
    "transfer_syntax_not_supported": _("Its image compression (transfer syntax) is not supported."),
    "out_of_resources": _("The clinic's storage quota is full, or the image is larger than allowed."),
    "processing_failure": _("The archive could not process it; try again, and tell support if it happens again."),
    # Members of a zip (apps.uploads.zip_reader).
    "path_traversal": _("Its name inside the zip points outside the zip; it was not opened."),
    "symlink": _("It is a link, not a file."),
    "encrypted": _("It is password-protected inside the zip."),
    "corrupt_member": _("It is damaged inside the zip and cannot be unpacked."),
    "nested_too_deep": _("It is a zip inside a zip inside a zip; unpack it first."),
    # A whole zip or file.
    "not_a_zip": _("It looks like a zip but cannot be opened as one."),
    "too_many_members": _("The zip holds more files than one upload accepts; split it."),
    "zip_bomb": _("The zip unpacks to far more than its size; refused for safety."),
    "unsafe_archive": _("The zip cannot be unpacked safely."),
    "staging_missing": _("Its uploaded bytes were lost before processing; upload it again."),
    # Refused while sending.
    "storage_quota_exceeded": _("The clinic's storage quota is full; nothing of this file was kept."),
    "upload_too_large": _("The file is larger than one upload accepts."),
    "upload_file_name_invalid": _("Its name is not a plain file name."),
    "upload_not_open": _("The upload was already finished or cancelled; start a new one."),
}
UNKNOWN_REASON = _("Refused by the archive.")


def refusal_reason(code: str) -> str:
    return str(REFUSAL_REASONS.get(code, UNKNOWN_REASON))
