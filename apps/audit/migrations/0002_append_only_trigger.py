"""The audit trail is append-only: the database itself refuses UPDATE and DELETE on it.

The function and trigger are created in the schema being migrated (the first on the search path),
so every tenant schema, the template and the public schema each carry their own.
"""

from django.db import migrations

FORBID_CHANGE = """
CREATE OR REPLACE FUNCTION audit_event_forbid_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_forbid_change();
"""

ALLOW_CHANGE = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_forbid_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunSQL(FORBID_CHANGE, ALLOW_CHANGE)]
