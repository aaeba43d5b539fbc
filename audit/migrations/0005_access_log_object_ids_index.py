"""PostgreSQL only: a GIN index on the ids each access-log row shows, so "every read of record
198" and the timeline's reads of a patient record logged before patient ids were kept are
index lookups, not scans of the log."""

from django.db import migrations


def index_object_ids(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS accesslog_object_ids_gin "
            "ON audit_accesslog USING gin (object_ids jsonb_path_ops)"
        )


def drop_object_ids_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS accesslog_object_ids_gin")


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_access_log_patients_timeline_activity_and_seals")]

    operations = [migrations.RunPython(index_object_ids, drop_object_ids_index)]
