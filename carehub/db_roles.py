"""Two PostgreSQL roles: the owner migrates, the application runs restricted.

The application's role (`DATABASE_URL`) owns nothing, so it cannot TRUNCATE, ALTER (no
`DISABLE TRIGGER`), DROP or CREATE; on history tables and the PHI access log it may only
SELECT and INSERT, on `django_migrations` only SELECT, elsewhere SELECT, INSERT, UPDATE and
DELETE. The owner (`MIGRATION_DATABASE_URL`, same database) runs `migrate`, `flush` and
`create_app_role`; after every migrate the grants are applied again, so a new table gets the
privileges of its kind. Default privileges give any table the owner creates outside migrate
only SELECT and INSERT until then: the safe side.

Without MIGRATION_DATABASE_URL (SQLite, or one PostgreSQL role) none of this applies and the
commands behave as Django's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")
APPEND_ONLY = "SELECT, INSERT"
READ_ONLY = "SELECT"
WORKING = "SELECT, INSERT, UPDATE, DELETE"


class RoleSetupError(Exception):
    """The two-role set-up cannot be applied as configured."""


def two_roles() -> bool:
    return settings.MIGRATION_DATABASE is not None


def app_role() -> str:
    return settings.APP_DATABASE_CREDENTIALS["USER"]


def app_password() -> str | None:
    return settings.APP_DATABASE_CREDENTIALS["PASSWORD"] or None


def owner_role() -> str:
    return settings.MIGRATION_DATABASE["USER"]


def _switch(connection: BaseDatabaseWrapper, credentials: dict) -> None:
    if connection.in_atomic_block:
        raise RoleSetupError("cannot change database role inside a transaction")
    # The next connect logs in with the new credentials (settings_dict is read at connect time).
    connection.close()
    connection.settings_dict.update(credentials)


def use_owner(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Reconnect `alias` as the owner (the test suite creates its database this way)."""
    _switch(connections[alias], {key: settings.MIGRATION_DATABASE.get(key) for key in CREDENTIALS})


def use_app_role(alias: str = DEFAULT_DB_ALIAS) -> None:
    _switch(connections[alias], dict(settings.APP_DATABASE_CREDENTIALS))


@contextlib.contextmanager
def as_owner(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block on the owner's login when two roles are configured; else as is."""
    connection = connections[alias]
    if (
        not two_roles()
        or alias != DEFAULT_DB_ALIAS
        or connection.settings_dict["USER"] == owner_role()
    ):
        yield
        return
    before = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
    use_owner(alias)
    try:
        yield
    finally:
        _switch(connection, before)


def append_only_tables() -> list[str]:
    from audit.immutability import protected_tables

    return protected_tables()


def grant_statements(connection: BaseDatabaseWrapper, role: str, owner: str) -> list[str]:
    """Every statement that gives `role` exactly the application's privileges on the tables of
    the current schema (run by `owner`; idempotent)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = cursor.fetchone()
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [row[0] for row in cursor.fetchall()]
    append_only = set(append_only_tables())
    read_only = {"django_migrations"}
    role_q, owner_q, schema_q = quote(role), quote(owner), quote(schema)
    statements = [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {role_q}",
        f"REVOKE CREATE ON SCHEMA {schema_q} FROM {role_q}",
        f"GRANT USAGE ON SCHEMA {schema_q} TO {role_q}",
    ]
    for table in tables:
        privileges = (
            APPEND_ONLY if table in append_only else READ_ONLY if table in read_only else WORKING
        )
        statements += [
            f"REVOKE ALL ON TABLE {quote(table)} FROM {role_q}",
            f"GRANT {privileges} ON TABLE {quote(table)} TO {role_q}",
        ]
    statements += [
        # nextval() for inserts; no UPDATE, so no setval().
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_q} TO {role_q}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_q} IN SCHEMA {schema_q} "
        f"GRANT {APPEND_ONLY} ON TABLES TO {role_q}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_q} IN SCHEMA {schema_q} "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {role_q}",
    ]
    return statements


def check_restricted(connection: BaseDatabaseWrapper, role: str) -> None:
    """Refuse a role that grants could not restrict: a superuser, or an owner of tables."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        found = cursor.fetchone()
        if found is None:
            raise RoleSetupError(
                f"the application's role {role!r} does not exist: run "
                "`manage.py create_app_role` (as the owner) first"
            )
        if found[0]:
            raise RoleSetupError(
                f"the application's role {role!r} is a superuser: no grant binds it"
            )
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tableowner = %s ORDER BY 1",
            [role],
        )
        owned = [row[0] for row in cursor.fetchall()]
    if owned:
        raise RoleSetupError(
            f"the application's role {role!r} owns {len(owned)} tables ({', '.join(owned[:5])}"
            f"{', …' if len(owned) > 5 else ''}); as the owner run "
            f"REASSIGN OWNED BY {role} TO {owner_role()}"
        )


def grant_app_role(alias: str = DEFAULT_DB_ALIAS) -> int:
    """Apply the application's privileges (two roles configured; run as the owner)."""
    connection = connections[alias]
    role = app_role()
    with transaction.atomic(using=alias):
        check_restricted(connection, role)
        statements = grant_statements(connection, role, owner_role())
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            # Before PostgreSQL 15 every role may CREATE in public through PUBLIC.
            cursor.execute("SELECT has_schema_privilege(%s, current_schema(), 'CREATE')", [role])
            if cursor.fetchone()[0]:
                raise RoleSetupError(
                    f"{role!r} may create tables in the schema through PUBLIC: as the owner run "
                    "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
                )
    return len(statements)
