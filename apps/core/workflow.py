"""One mechanism for every state change of a stateful entity (docs/architecture.md "The workflow
mechanism").

Each entity (a consult, an AI job, a film, an upload session, a webhook delivery) declares a
`TransitionTable`: its events, the states each event may leave and the state it leads to. Its
services change state only through `move`, which

- refuses an event the current state does not allow (`InvalidTransition`, 409) before anything changes;
- writes the new state with a conditional UPDATE (``… WHERE pk = … AND state = <the state it read>``),
  so of two workers moving one row only one wins, the other gets `InvalidTransition`;
- calls the entity's recorder (its audit row) in the same transaction as the UPDATE.

This module knows nothing of the rest of the project: the recorder is passed in
(`apps.audit.services.audited_move` passes the one that writes an audit row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from apps.core.errors import Conflict


class InvalidTransition(Conflict):
    """The entity's current state does not allow the action."""

    code = "invalid_transition"


@dataclass(frozen=True)
class Transition:
    event: str
    sources: frozenset[str]
    target: str


class TransitionTable:
    """The allowed moves of one entity: ``{event: (states it may leave, state it leads to)}``."""

    def __init__(self, *, entity: str, field: str, transitions: Mapping[str, tuple[Iterable[str], str]]) -> None:
        self.entity = entity
        self.field = field
        self.transitions = {
            event: Transition(event=event, sources=frozenset(sources), target=target)
            for event, (sources, target) in transitions.items()
        }

    @property
    def events(self) -> frozenset[str]:
        return frozenset(self.transitions)

    @property
    def states(self) -> frozenset[str]:
        named: set[str] = set()
        for transition in self.transitions.values():
            named |= transition.sources | {transition.target}
        return frozenset(named)

    def allows(self, current: str, event: str) -> bool:
        transition = self.transitions.get(event)
        return transition is not None and current in transition.sources

    def target(self, current: str, event: str) -> str:
        """The state `event` leads to from `current`, or InvalidTransition."""
        transition = self.transitions.get(event)
        if transition is None:
            raise ValueError(f"{self.entity} has no event {event!r}")
        if current not in transition.sources:
            raise InvalidTransition(f"A {self.entity} that is {current} cannot {event.replace('_', ' ')}.")
        return transition.target


@dataclass(frozen=True)
class Move:
    """One state change that has been written (handed to the recorder, returned by `move`)."""

    entity: models.Model
    event: str
    source: str
    target: str


Recorder = Callable[[Move], object]


def move(entity: models.Model, table: TransitionTable, event: str, *, record: Recorder, **fields: Any) -> Move:
    """Apply `event` to `entity`: check it against `table`, write the new state and `fields` with a
    conditional UPDATE on the state read, call `record` in that transaction, and update `entity`.

    A row another worker moved (or removed) since it was read raises InvalidTransition and changes
    nothing; fields with ``auto_now`` are set as ``save()`` would set them.
    """
    source = getattr(entity, table.field)
    target = table.target(source, event)
    values: dict[str, Any] = {table.field: target, **fields}
    for field in entity._meta.concrete_fields:
        if getattr(field, "auto_now", False) and field.name not in values:
            values[field.name] = timezone.now()
    manager = type(entity)._default_manager
    with transaction.atomic():
        updated = manager.filter(pk=entity.pk, **{table.field: source}).update(**values)
        if updated != 1:
            now = manager.filter(pk=entity.pk).values_list(table.field, flat=True).first()
            raise InvalidTransition(
                f"The {table.entity} was {source} but is {now or 'gone'} now: it cannot {event.replace('_', ' ')}."
            )
        for name, value in values.items():
            setattr(entity, name, value)
        moved = Move(entity=entity, event=event, source=source, target=target)
        record(moved)
    return moved
