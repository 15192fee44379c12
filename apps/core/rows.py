"""Model instances from hand-written SQL, for the few statements every request runs.

The ORM spends about half a millisecond building each query; on a request that does nothing else
(a cached rendered frame, one STOW-RS instance) that is most of the time. These helpers keep such
statements plain SQL while still handing out ordinary model instances (`Model.from_db`, the hook
the ORM itself uses), so callers cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

ModelT = TypeVar("ModelT", bound=Model)


def column_list(model: type[Model], alias: str) -> str:
    """`alias."col1", alias."col2", …` for every concrete field, in field order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def qualified_table(model: type[Model], schema: str) -> str:
    quote = connection.ops.quote_name
    return f"{quote(schema)}.{quote(model._meta.db_table)}"


def instance_from_row(model: type[ModelT], row: Sequence[Any], start: int = 0) -> tuple[ModelT, int]:
    """The instance whose `column_list` values begin at `row[start]`, and where the next model's begin."""
    attnames, converters = _loading(model)
    values = list(row[start:start + len(attnames)])
    for offset, from_db_value in converters:
        if values[offset] is not None:
            values[offset] = from_db_value(values[offset], None, connection)
    return model.from_db(connection.alias, attnames, values), start + len(attnames)


@cache
def _loading(model: type[Model]) -> tuple[list[str], list[tuple[int, Any]]]:
    """Per model, once: its concrete fields' attribute names, and the fields that convert database
    values (JSON, for one) with their positions."""
    fields = model._meta.concrete_fields
    converters = [(offset, converter) for offset, field in enumerate(fields)
                  if (converter := getattr(field, "from_db_value", None)) is not None]
    return [field.attname for field in fields], converters


def insert_row(model: type[Model], values: dict[str, Any]) -> Any:
    """INSERT one row of `model` in the current schema, each value prepared by its field as the ORM
    would (JSON, addresses, dates), and return its primary key. Fields left out take their database
    default, not the model's (so name them all)."""
    sql, fields = _insert_statement(model, tuple(values))
    with connection.cursor() as cursor:
        prepared = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values.values(), strict=True)]
        cursor.execute(sql, prepared)
        return cursor.fetchone()[0]


@cache
def _insert_statement(model: type[Model], names: tuple[str, ...]) -> tuple[str, tuple[Field[Any, Any], ...]]:
    """The INSERT text and its fields, built once per model and set of fields (not on every request)."""
    quote = connection.ops.quote_name
    fields: tuple[Field[Any, Any], ...] = tuple(model._meta.get_field(name) for name in names)  # type: ignore[misc]
    primary_key = model._meta.pk
    assert primary_key is not None
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(primary_key.column)}"
    )
    return sql, fields
