"""On PostgreSQL a trigger refuses any UPDATE or DELETE of a history entry, whatever the code
does (raw SQL, the platform admin, a shell). SQLite (``make run``, the quick tests) has no such
trigger: there the model's own refusal is the wall."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION history_change_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'history_change is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER history_change_append_only
    BEFORE UPDATE OR DELETE ON history_change
    FOR EACH ROW EXECUTE FUNCTION history_change_refuse();
"""
DROP = """
DROP TRIGGER IF EXISTS history_change_append_only ON history_change;
DROP FUNCTION IF EXISTS history_change_refuse();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("history", "0001_append_only_history")]
    operations = [migrations.RunPython(create, drop)]
