"""The five role groups and the named system user that background work acts as.

Permissions of each role are applied after migrate from carehub.roles (see audit.apps), because
the permissions of apps migrated later do not exist yet at this point.
"""

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations

ROLES = ("Agent", "Supervisor", "Care coordinator", "Auditor", "Administrator")


def create_roles_and_system_user(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("carehub", "User")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    User.objects.get_or_create(
        username=settings.CAREHUB_SYSTEM_USERNAME,
        defaults={
            "first_name": "CareHub",
            "last_name": "automation",
            # Inactive with an unusable password: it appears in history but can never sign in.
            "is_active": False,
            "password": make_password(None),
        },
    )


class Migration(migrations.Migration):
    dependencies = [("carehub", "0001_initial")]

    operations = [migrations.RunPython(create_roles_and_system_user, migrations.RunPython.noop)]
