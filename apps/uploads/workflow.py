"""An upload session's states and transitions, in one table (apps.core.workflow; docs/architecture.md
"The workflow mechanism").

    open → processing → completed;  open → cancelled (by its user) | expired (idle too long).
"""

from __future__ import annotations

from apps.core.workflow import TransitionTable
from apps.uploads.models import UploadSessionStatus as S

UPLOAD_SESSION_WORKFLOW = TransitionTable(entity="upload session", field="status", transitions={
    "finish": ({S.OPEN}, S.PROCESSING),
    "cancel": ({S.OPEN}, S.CANCELLED),
    "expire": ({S.OPEN}, S.EXPIRED),
    "complete": ({S.PROCESSING}, S.COMPLETED),
})
