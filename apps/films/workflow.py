"""A film's states and transitions, in one table (apps.core.workflow; docs/architecture.md "The
workflow mechanism").

    queued → running → ready | failed;  queued → failed (a render that never ran, given up);
    running | failed → running again (a render sent again after a lost message or worker);
    failed → ready (a late render of a film given up).
"""

from __future__ import annotations

from apps.core.workflow import TransitionTable
from apps.films.models import FilmState as S

FILM_WORKFLOW = TransitionTable(entity="film", field="state", transitions={
    "start": ({S.QUEUED, S.RUNNING, S.FAILED}, S.RUNNING),
    "finish": ({S.RUNNING, S.FAILED}, S.READY),
    "fail": ({S.QUEUED, S.RUNNING}, S.FAILED),
})
