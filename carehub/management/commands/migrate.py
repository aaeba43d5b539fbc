"""Django's migrate, run as the owner when two database roles are configured.

With MIGRATION_DATABASE_URL set, the migrations run on the owner's login (the application's
role may not change the schema), then the application's role gets its grants again so tables
added by these migrations carry the privileges of their kind (carehub/db_roles.py).
"""

from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrate

from carehub import db_roles


class Command(DjangoMigrate):
    help = (
        f"{DjangoMigrate.help} With MIGRATION_DATABASE_URL: as that (owner) role, then grants "
        "the application's role (DATABASE_URL) its privileges again."
    )

    def handle(self, *args, **options):
        database = options["database"]
        with db_roles.as_owner(database):
            super().handle(*args, **options)
            if db_roles.two_roles() and database == "default" and not options["plan"]:
                try:
                    count = db_roles.grant_app_role(database)
                except db_roles.RoleSetupError as error:
                    raise CommandError(str(error)) from None
                if options["verbosity"] >= 1:
                    self.stdout.write(
                        f"Granted the application's role {db_roles.app_role()!r} its privileges "
                        f"({count} statements)."
                    )
