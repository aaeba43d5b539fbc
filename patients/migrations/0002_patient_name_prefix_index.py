"""PostgreSQL only: an index for case-insensitive name-prefix search.

Django compiles `family_name__istartswith` to `UPPER(family_name::text) LIKE UPPER('smi%')`;
text_pattern_ops makes that use an index whatever the database collation. SQLite needs no such
index for the demo and cannot parse the operator class.
"""

from django.db import migrations

INDEXES = {
    "patient_family_prefix": "UPPER(family_name) text_pattern_ops, UPPER(given_name) text_pattern_ops",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON patients_patient ({columns})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("patients", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
