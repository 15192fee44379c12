"""An AI job's states and transitions, in one table (apps.core.workflow; docs/architecture.md "The
workflow mechanism").

    queued → running → succeeded | failed;  running → queued (a fault that can pass, attempts left);
    running → running (a new attempt after its worker was lost);  queued | running → failed | cancelled.
"""

from __future__ import annotations

from apps.ai.models import JobState as S
from apps.core.workflow import TransitionTable

AI_JOB_WORKFLOW = TransitionTable(entity="AI job", field="state", transitions={
    "claim": ({S.QUEUED, S.RUNNING}, S.RUNNING),
    "succeed": ({S.RUNNING}, S.SUCCEEDED),
    "fail": ({S.QUEUED, S.RUNNING}, S.FAILED),
    "cancel": ({S.QUEUED, S.RUNNING}, S.CANCELLED),
    "requeue": ({S.RUNNING}, S.QUEUED),
})
