"""The workflow mechanism (apps.core.workflow, docs/architecture.md "The workflow mechanism"): a move
the table forbids changes nothing; of two workers moving one row only the first wins (conditional
UPDATE on the state it read); the audit row commits or rolls back with the move."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.audit.actions import AuditAction
from apps.audit.models import AuditEvent
from apps.audit.services import Actor, audited_move
from apps.core.workflow import InvalidTransition, TransitionTable
from apps.films.models import Film, FilmState
from apps.films.workflow import FILM_WORKFLOW

ACTOR = Actor.system("test")


def _film(platform) -> Film:
    with platform.schema("clinic_a"):
        return Film.objects.create(study_instance_uid="1.2.3", layout="1x1", requested_by="test")


def _audited(film: Film) -> list[str]:
    return list(AuditEvent.objects.filter(object_type="film", object_id=str(film.pk)).values_list("action", flat=True))


def _start(film: Film) -> None:
    audited_move(film, FILM_WORKFLOW, "start", actor=ACTOR, action=AuditAction.FILM_RENDER_START, object_type="film")


def test_the_table_names_the_target_and_refuses_a_state_the_event_may_not_leave():
    table = TransitionTable(entity="thing", field="state", transitions={"close": ({"open"}, "closed")})

    assert table.target("open", "close") == "closed"
    assert (table.allows("closed", "close"), table.states, table.events) == (False, {"open", "closed"}, {"close"})
    with pytest.raises(InvalidTransition, match="A thing that is closed cannot close."):
        table.target("closed", "close")


def test_a_move_writes_the_state_its_fields_and_one_audit_row(platform):
    film = _film(platform)
    with platform.schema("clinic_a"):
        audited_move(film, FILM_WORKFLOW, "start", actor=ACTOR, action=AuditAction.FILM_RENDER_START,
                     object_type="film", detail={"why": "test"}, error_detail="none yet")
        stored = Film.objects.get(pk=film.pk)

        assert (film.state, stored.state, stored.error_detail) == (FilmState.RUNNING, FilmState.RUNNING, "none yet")
        assert list(AuditEvent.objects.filter(object_type="film", object_id=str(film.pk))
                    .values_list("action", "detail")) == [("film.render_start", {"why": "test"})]


def test_a_move_the_table_forbids_changes_nothing_and_audits_nothing(platform):
    film = _film(platform)
    with platform.schema("clinic_a"):
        with pytest.raises(InvalidTransition, match="A film that is queued cannot finish."):
            audited_move(film, FILM_WORKFLOW, "finish", actor=ACTOR, action=AuditAction.FILM_RENDER,
                         object_type="film")

        assert (Film.objects.get(pk=film.pk).state, _audited(film)) == (FilmState.QUEUED, [])


def test_of_two_workers_moving_one_row_only_the_first_wins(platform):
    film = _film(platform)
    with platform.schema("clinic_a"):
        first, second = Film.objects.get(pk=film.pk), Film.objects.get(pk=film.pk)
        audited_move(first, FILM_WORKFLOW, "fail", actor=ACTOR, action=AuditAction.FILM_RENDER, object_type="film")
        # The second copy still reads `queued`, from where `finish` is forbidden and `start` allowed;
        # the row is `failed` now, so the conditional UPDATE on `queued` matches nothing.
        with pytest.raises(InvalidTransition, match="was queued but is failed now"):
            _start(second)

        assert (Film.objects.get(pk=film.pk).state, _audited(film)) == (FilmState.FAILED, ["film.render"])


def test_a_move_whose_audit_row_cannot_be_written_is_rolled_back(platform):
    film = _film(platform)
    with platform.schema("clinic_a"):
        with pytest.raises(ValueError, match="not.an_action"):
            audited_move(film, FILM_WORKFLOW, "start", actor=ACTOR, action="not.an_action",  # type: ignore[arg-type]
                         object_type="film")

        assert (Film.objects.get(pk=film.pk).state, _audited(film)) == (FilmState.QUEUED, [])


def test_a_move_inside_a_transaction_that_rolls_back_leaves_neither_state_nor_audit_row(platform):
    film = _film(platform)
    with platform.schema("clinic_a"):
        with pytest.raises(RuntimeError, match="rolled back"), transaction.atomic():
            _start(film)
            raise RuntimeError("rolled back")

        assert (Film.objects.get(pk=film.pk).state, _audited(film)) == (FilmState.QUEUED, [])
