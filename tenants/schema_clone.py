"""Create a tenant's schema as a copy of the migrated template schema, in time independent of how many
tenants exist.

django-tenants' `clone_schema` SQL function finds each table's indexes and sequences through
`pg_indexes` and `information_schema`, joined by table *name* across every schema; with one schema per
tenant, every clone scans the same tables of all earlier tenants and provisioning slows down linearly
with the number of tenants (measured: 1.2 s for the 10th tenant, 6.4 s around the 100th; see
docs/benchmarks.md). Here every catalog query is restricted to the template's namespace.

What is copied: tables (columns, defaults, NOT NULL and CHECK constraints, identity columns with
their sequences, table and column comments, storage settings), primary-key, unique and exclusion constraints and other
indexes under their original names (migrations drop them by name), foreign keys, functions, triggers,
and every row (django_migrations, content types, permissions), with identity sequences moved past the
copied rows.

Indexes are copied by `CREATE TABLE … (LIKE … INCLUDING ALL)`, which clones each index from its stored
parse tree, and then renamed to the template's names. Replaying `pg_get_indexdef` text instead is not
exact: PostgreSQL prints some predicates (`state IN ('queued', 'running')` of a partial unique index) in
a form that parses back to a different tree, so the copy would differ from the template. A template holding anything else (views, partitioned or foreign tables, standalone
sequences, types, policies, rules, constraint triggers) is left to django-tenants' general clone.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

_SUPPORTED_RELATION_KINDS = {"r", "i", "S"}  # tables, their indexes, their identity sequences


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _template_has_only_what_this_copies(cursor: CursorWrapper, template_oid: int) -> bool:
    cursor.execute(
        """
        SELECT
          (SELECT count(*) FROM pg_class c WHERE c.relnamespace = %(ns)s AND c.relkind::text <> ALL(%(kinds)s))
          -- sequences that are not a table's identity sequence
          + (SELECT count(*) FROM pg_class s WHERE s.relnamespace = %(ns)s AND s.relkind = 'S'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = s.oid AND d.deptype = 'i'))
          -- types other than the row and array types of the tables
          + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = %(ns)s AND t.typrelid = 0 AND t.typelem = 0)
          + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = %(ns)s AND t.typelem <> 0
               AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typrelid <> 0))
          + (SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = %(ns)s)
          + (SELECT count(*) FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = %(ns)s)
          + (SELECT count(*) FROM pg_constraint con WHERE con.connamespace = %(ns)s AND con.contype = 't')
          + (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = %(ns)s AND p.prokind <> 'f')
          -- defaults drawing from a sequence of the template, and generated columns (not copyable by INSERT)
          + (SELECT count(*) FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
               WHERE c.relnamespace = %(ns)s AND pg_get_expr(d.adbin, d.adrelid) LIKE '%%nextval(%%')
          + (SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               WHERE c.relnamespace = %(ns)s AND a.attgenerated <> '')
        """,
        {"ns": template_oid, "kinds": list(_SUPPORTED_RELATION_KINDS)},
    )
    return cursor.fetchone()[0] == 0


def _statements(cursor: CursorWrapper, template: str, template_oid: int, schema: str) -> list[str] | None:
    source, target = _quote(template), _quote(schema)
    # How PostgreSQL itself prints the template's name in definitions (quoted only when it must be).
    cursor.execute("SELECT quote_ident(%s)", [template])
    printed = cursor.fetchone()[0]
    statements = [f"CREATE SCHEMA {target}"]

    cursor.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s AND c.relkind = 'r' ORDER BY c.relname",
        [template_oid],
    )
    tables = [row[0] for row in cursor.fetchall()]
    for table in tables:
        statements.append(
            f"CREATE TABLE {target}.{_quote(table)} (LIKE {source}.{_quote(table)} INCLUDING ALL)"
        )
        statements.append(
            f"INSERT INTO {target}.{_quote(table)} OVERRIDING SYSTEM VALUE SELECT * FROM {source}.{_quote(table)}"
        )

    # LIKE … INCLUDING COMMENTS copies the comments of columns, not the table's own.
    cursor.execute(
        """
        SELECT format('COMMENT ON TABLE %%s.%%I IS %%L', %s::text, c.relname, d.description)
        FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
        WHERE c.relnamespace = %s AND c.relkind = 'r' AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
        ORDER BY c.relname
        """,
        [target, template_oid],
    )
    statements.extend(row[0] for row in cursor.fetchall())

    cursor.execute(
        """
        SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = %s AND c.relkind = 'r' AND a.attidentity <> '' AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum
        """,
        [template_oid],
    )
    for table, column in cursor.fetchall():
        qualified = f"{target}.{_quote(table)}"
        statements.append(
            f"SELECT setval(pg_get_serial_sequence('{qualified}', '{column}'), "
            f"COALESCE(max({_quote(column)}), 0) + 1, false) FROM {qualified}"
        )

    # Definitions are read with the template alone on the search path, so they name its objects
    # unqualified and are replayed below with the new schema on the search path.
    cursor.execute(f"SET LOCAL search_path = {source}")
    cursor.execute(
        """
        SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
        FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
        WHERE con.connamespace = %s AND con.contype = 'f'
        ORDER BY c.relname, con.conname
        """,
        [template_oid],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute("SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = %s ORDER BY p.proname", [template_oid])
    functions = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        """
        SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = %s AND NOT t.tgisinternal ORDER BY c.relname, t.tgname
        """,
        [template_oid],
    )
    triggers = [row[0] for row in cursor.fetchall()]

    statements.append(f"SET LOCAL search_path = {target}")
    for definition in functions:
        header = f"FUNCTION {printed}."
        if header not in definition or f"{printed}." in definition.replace(header, "", 1):
            return None
        statements.append(definition.replace(header, f"FUNCTION {target}.", 1))
    for table, name, definition in foreign_keys:
        statements.append(f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(name)} {definition}")
    for definition in triggers:
        # pg_get_triggerdef qualifies the table always, the function only when it is not visible.
        definition = definition.replace(f" ON {printed}.", f" ON {target}.", 1)
        definition = definition.replace(f"FUNCTION {printed}.", f"FUNCTION {target}.", 1)
        if f"{printed}." in definition:
            return None
        statements.append(definition)
    if any(f"{printed}." in definition for _, _, definition in foreign_keys):
        return None
    return statements


class _IndexCopyMismatch(Exception):
    """An index of the copy has no counterpart in the template (never expected; the clone is abandoned)."""


def _indexes_by_definition(cursor: CursorWrapper, schema: str) -> list[tuple[tuple[str, str], str, str | None]]:
    """Each index of `schema` as ((table, definition without its own name and schema), index name,
    name of the constraint it backs or None), read with `schema` alone on the search path so that
    the same tree prints the same text in the template and in its copy."""
    cursor.execute(f"SET LOCAL search_path = {_quote(schema)}")
    cursor.execute(
        """
        SELECT t.relname, i.relname, con.conname, x.indisunique, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
             AND con.contype IN ('p', 'u', 'x')
        WHERE t.relnamespace = %s::regnamespace ORDER BY t.relname, x.indexrelid
        """,
        [schema],
    )
    return [
        ((table, f"{unique}:{constraint is not None}:{definition.split(' USING ', 1)[1]}"), name, constraint)
        for table, name, constraint, unique, definition in cursor.fetchall()
    ]


def _indexes_rename_to_templates(cursor: CursorWrapper, template: str, schema: str) -> None:
    """Give every index (and the constraint it backs) of the copy its name in the template.

    LIKE names the copied indexes itself; a generated name may be another index's original name,
    so every index moves to a temporary name first."""
    template_names: dict[tuple[str, str], list[str]] = {}
    for key, name, _ in _indexes_by_definition(cursor, template):
        template_names.setdefault(key, []).append(name)
    target = _quote(schema)
    final_names: list[tuple[str, str, bool, str]] = []  # table, temporary name, backs a constraint, final name
    for position, (key, name, constraint) in enumerate(_indexes_by_definition(cursor, schema)):
        candidates = template_names.get(key)
        if not candidates:
            raise _IndexCopyMismatch(f"{key[0]}.{name}")
        temporary = f"clone_index_{position}"
        final_names.append((key[0], temporary, constraint is not None, candidates.pop(0)))
        _index_rename(cursor, target, key[0], name, constraint is not None, temporary)
    for table, temporary, backs_constraint, final in final_names:
        _index_rename(cursor, target, table, temporary, backs_constraint, final)


def _index_rename(cursor: CursorWrapper, target: str, table: str, name: str, backs_constraint: bool, new_name: str) -> None:
    # Renaming a constraint renames its index too; a plain index is renamed directly.
    if backs_constraint:
        cursor.execute(f"ALTER TABLE {target}.{_quote(table)} RENAME CONSTRAINT {_quote(name)} TO {_quote(new_name)}")
    else:
        cursor.execute(f"ALTER INDEX {target}.{_quote(name)} RENAME TO {_quote(new_name)}")


def schema_clone_from_template(*, template: str, schema: str) -> bool:
    """Create `schema` as a copy of `template`, in one transaction (the caller's, if it has one).

    Returns False (having created nothing) when the template holds something this copy does not
    handle; the caller then uses django-tenants' general clone."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            return _schema_clone(cursor, template=template, schema=schema)
    except _IndexCopyMismatch:
        return False


def _schema_clone(cursor: CursorWrapper, *, template: str, schema: str) -> bool:
    cursor.execute("SELECT oid, current_setting('search_path') FROM pg_namespace WHERE nspname = %s", [template])
    row = cursor.fetchone()
    if row is None:
        raise ValueError(f"Template schema {template!r} does not exist")
    template_oid, search_path = row
    if not _template_has_only_what_this_copies(cursor, template_oid):
        return False
    statements = _statements(cursor, template, template_oid, schema)
    # django-tenants remembers the search path it set and does not set it again: put it back.
    # (On an error the transaction rolls back, and the SET LOCALs with it.)
    cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
    if statements is None:
        return False
    for statement in statements:
        cursor.execute(statement)
    _indexes_rename_to_templates(cursor, template, schema)
    cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
    return True
