"""PostgreSQL only: refuse UPDATE and DELETE on every history table and on the access log.

Tables created by later migrations get the same trigger from the post_migrate hook in
audit.immutability, which uses the same function.
"""

from django.db import migrations


def install(apps, schema_editor):
    from audit.immutability import protect_history_tables

    protect_history_tables(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_accesslog_organization"),
        ("carehub", "0002_roles_and_system_user"),
        ("patients", "0001_initial"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
