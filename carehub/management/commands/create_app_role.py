"""Create the application's restricted PostgreSQL role and grant it its privileges.

Run by the owner once per database (migrate re-grants after each migration):

    DATABASE_URL=postgres://carehub_app:APP_PASSWORD@host/carehub \
    MIGRATION_DATABASE_URL=postgres://carehub_owner:OWNER_PASSWORD@host/carehub \
    manage.py create_app_role

The role's name and password are DATABASE_URL's. `--print-sql` prints the statements for a DBA
to run instead (the password left as a psql variable).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, transaction

from carehub import db_roles

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


class Command(BaseCommand):
    help = "Create the application's database role (DATABASE_URL's user) and grant it access."

    def add_arguments(self, parser):
        parser.add_argument(
            "--print-sql", action="store_true", help="print the statements instead of running them"
        )

    def handle(self, *args, print_sql: bool, **options):
        if not db_roles.two_roles():
            raise CommandError(
                "Set MIGRATION_DATABASE_URL (the owner) and DATABASE_URL (the application's role) "
                "to two different PostgreSQL logins of the same database"
            )
        role, owner = db_roles.app_role(), db_roles.owner_role()
        if role == owner:
            raise CommandError(
                f"DATABASE_URL and MIGRATION_DATABASE_URL both log in as {role!r}: "
                "the application needs a role of its own"
            )
        with db_roles.as_owner():
            connection = connections["default"]
            quote = connection.ops.quote_name
            if print_sql:
                self.stdout.write(
                    f"CREATE ROLE {quote(role)} {ROLE_ATTRIBUTES} PASSWORD :'app_password';"
                )
                for statement in db_roles.grant_statements(connection, role, owner):
                    self.stdout.write(statement + ";")
                return
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
                verb = "ALTER" if cursor.fetchone() else "CREATE"
                password = db_roles.app_password()
                # Role statements take no bind parameters; the password is quoted as a literal.
                cursor.execute(
                    f"{verb} ROLE {quote(role)} {ROLE_ATTRIBUTES}"
                    + (f" PASSWORD {quote_literal(cursor, password)}" if password else "")
                )
            try:
                count = db_roles.grant_app_role()
            except db_roles.RoleSetupError as error:
                raise CommandError(str(error)) from None
        self.stdout.write(
            f"{'Created' if verb == 'CREATE' else 'Updated'} role {role!r}; granted its "
            f"privileges on the current tables and future ones ({count} statements)."
        )


def quote_literal(cursor, value: str) -> str:
    from psycopg import sql

    return sql.Literal(value).as_string(cursor.connection)
