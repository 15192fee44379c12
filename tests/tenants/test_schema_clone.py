"""A tenant's schema is a faithful copy of the template: same tables, columns, constraints, indexes
(under the same names), functions, triggers and rows; and the copy is refused (leaving the general
django-tenants clone to do it) when the template holds something it does not copy."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.db import connection, transaction

from tenants.schema_clone import schema_clone_from_template
from tests.support.platform import unique_suffix
from tests.support.tenancy import discard_tenant, provision_throwaway


def _rows(sql: str, schema: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, {"schema": schema})
        return [tuple(row) for row in cursor.fetchall()]


def _without_schema(rows: list[tuple], schema: str) -> list[tuple]:
    """Definitions print the schema's name; take it out so two schemas can be compared."""
    pattern = re.compile(rf'"?{re.escape(schema)}"?\.')
    return [tuple(pattern.sub("", value) if isinstance(value, str) else value for value in row) for row in rows]


def schema_signature(schema: str) -> dict[str, list[tuple]]:
    """What a schema holds, as comparable lists (names and definitions, no object ids)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL search_path = "{schema}"')
    signature = {
        "columns": _rows(
            """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                   a.attgenerated, pg_get_expr(d.adbin, d.adrelid), row_number() OVER (PARTITION BY c.relname ORDER BY a.attnum)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY 1, 8
            """, schema,
        ),
        "constraints": _rows(
            """
            SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid), con.condeferrable, con.condeferred
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            WHERE con.connamespace = %(schema)s::regnamespace ORDER BY 1, 2
            """, schema,
        ),
        "indexes": _rows(
            """
            SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relnamespace = %(schema)s::regnamespace ORDER BY 1, 2
            """, schema,
        ),
        "identity_sequences": _rows(
            """
            SELECT c.relname, a.attname, s.seqincrement, s.seqmin
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_depend d ON d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype = 'i'
            JOIN pg_sequence s ON s.seqrelid = d.objid
            WHERE c.relnamespace = %(schema)s::regnamespace ORDER BY 1, 2
            """, schema,
        ),
        "functions": _rows(
            "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = %(schema)s::regnamespace ORDER BY 1",
            schema,
        ),
        "triggers": _rows(
            """
            SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = %(schema)s::regnamespace AND NOT t.tgisinternal ORDER BY 1, 2
            """, schema,
        ),
        "comments": _rows(
            """
            SELECT c.relname, d.objsubid, d.description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
            WHERE c.relnamespace = %(schema)s::regnamespace AND d.classoid = 'pg_class'::regclass ORDER BY 1, 2
            """, schema,
        ),
    }
    return {name: _without_schema(rows, schema) for name, rows in signature.items()}


def table_rows(schema: str, table: str, order_by: str = "id") -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY {order_by}')
        return [tuple(row) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def fresh(platform):
    result = provision_throwaway(platform, kind="clinic")
    yield result.tenant.schema_name
    discard_tenant(platform, result.tenant.slug)


def test_a_tenant_schema_has_the_templates_structure_exactly(platform, fresh):
    with platform.schema(), transaction.atomic():
        template = schema_signature(settings.TENANT_BASE_SCHEMA)
        tenant = schema_signature(fresh)
    assert template["columns"], "the template has tables"
    for part in template:
        assert tenant[part] == template[part], part


def test_a_tenant_schema_starts_with_the_templates_migration_and_content_type_rows(platform, fresh):
    with platform.schema():
        for table in ["django_migrations", "django_content_type", "auth_permission"]:
            assert table_rows(fresh, table) == table_rows(settings.TENANT_BASE_SCHEMA, table), table


def test_identity_columns_continue_after_the_copied_rows(platform, fresh):
    from django.contrib.contenttypes.models import ContentType

    with platform.schema(), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'SET LOCAL search_path = "{fresh}"')
            highest = ContentType.objects.order_by("-id").values_list("id", flat=True).first()
            created = ContentType.objects.create(app_label="probe", model=f"m{unique_suffix()}")
            transaction.set_rollback(True)
    assert created.pk == highest + 1


def test_the_audit_trigger_in_a_tenant_schema_calls_the_tenants_own_function(platform, fresh):
    with platform.schema():
        (definition,) = _rows(
            """
            SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relnamespace = %(schema)s::regnamespace AND t.tgname = 'audit_event_append_only'
            """, fresh,
        )[0]
    assert f"ON {fresh}.audit_auditevent" in definition
    assert f"EXECUTE FUNCTION {fresh}.audit_event_forbid_change()" in definition


# --- a scratch template: what is copied, and what makes the copy step aside ------------------------------------


@pytest.fixture
def scratch_template(platform):
    """A small template of our own, built and thrown away inside one transaction."""
    name = f"scratch_{unique_suffix()}"
    with platform.schema(), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{name}"')
            cursor.execute(f'SET LOCAL search_path = "{name}"')
            cursor.execute(
                """
                CREATE TABLE parent (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                                     code varchar(20) NOT NULL CONSTRAINT parent_code_uniq UNIQUE,
                                     size integer CHECK (size >= 0) DEFAULT 0);
                COMMENT ON TABLE parent IS 'a parent';
                CREATE TABLE child (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                                    parent_id bigint NOT NULL REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED,
                                    note text);
                CREATE INDEX child_note_named_idx ON child (lower(note)) WHERE note IS NOT NULL;
                CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
                CREATE TRIGGER child_refuse BEFORE DELETE ON child FOR EACH ROW EXECUTE FUNCTION refuse();
                INSERT INTO parent (code) VALUES ('a'), ('b');
                INSERT INTO child (parent_id, note) VALUES (1, 'x');
                """
            )
            cursor.execute("SET LOCAL search_path = public")
        yield name
        transaction.set_rollback(True)


def test_a_scratch_template_is_copied_whole(scratch_template):
    copy = f"copy_{unique_suffix()}"
    assert schema_clone_from_template(template=scratch_template, schema=copy) is True
    assert schema_signature(copy) == schema_signature(scratch_template)
    assert table_rows(copy, "parent") == table_rows(scratch_template, "parent")
    with connection.cursor() as cursor:
        cursor.execute(f'INSERT INTO "{copy}".parent (code) VALUES (\'c\') RETURNING id')
        assert cursor.fetchone()[0] == 3


@pytest.mark.parametrize(
    "extra",
    [
        "CREATE VIEW parent_codes AS SELECT code FROM parent",
        "CREATE SEQUENCE standalone_counter",
        "CREATE TYPE mood AS ENUM ('happy', 'sad')",
        "CREATE TABLE measured (id int, doubled int GENERATED ALWAYS AS (id * 2) STORED)",
        "CREATE TABLE numbered (id int DEFAULT nextval('standalone') )",
    ],
    ids=["view", "standalone-sequence", "enum-type", "generated-column", "sequence-default"],
)
def test_a_template_holding_what_the_copy_does_not_handle_is_left_to_the_general_clone(scratch_template, extra):
    copy = f"copy_{unique_suffix()}"
    with connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL search_path = "{scratch_template}"')
        if "nextval('standalone')" in extra:
            cursor.execute("CREATE SEQUENCE standalone")
        cursor.execute(extra)
        cursor.execute("SET LOCAL search_path = public")
    assert schema_clone_from_template(template=scratch_template, schema=copy) is False
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [copy])
        assert cursor.fetchone()[0] == 0
