"""The states and transitions of an upload session, its files and its resumable transfers, one table
each (apps.core.workflow; docs/architecture.md "The workflow mechanism").

    session:  open → processing → completed;  open → cancelled (by its user) | expired (idle too long).
    file:     received → done (every member ingested or recorded as failed) | refused (not readable as a whole).
    transfer: receiving → received (handed to its session as a file) | refused (the session would not take it).

A session's moves are audited; a file's or a transfer's are not (a folder is thousands of them): a
file's move counts it done in its session, in the same transaction, and its outcome is its items'.
"""

from __future__ import annotations

from apps.core.workflow import TransitionTable
from apps.uploads.models import UploadFileStatus as F
from apps.uploads.models import UploadSessionStatus as S
from apps.uploads.models import UploadTransferStatus as T

UPLOAD_SESSION_WORKFLOW = TransitionTable(entity="upload session", field="status", transitions={
    "finish": ({S.OPEN}, S.PROCESSING),
    "cancel": ({S.OPEN}, S.CANCELLED),
    "expire": ({S.OPEN}, S.EXPIRED),
    "complete": ({S.PROCESSING}, S.COMPLETED),
})

UPLOAD_FILE_WORKFLOW = TransitionTable(entity="uploaded file", field="status", transitions={
    "finish": ({F.RECEIVED}, F.DONE),
    "refuse": ({F.RECEIVED}, F.REFUSED),
})

UPLOAD_TRANSFER_WORKFLOW = TransitionTable(entity="resumable upload", field="status", transitions={
    "hand_over": ({T.RECEIVING}, T.RECEIVED),
    "refuse": ({T.RECEIVING}, T.REFUSED),
})
