"""The application's PostgreSQL role cannot erase or rewrite the audit, yet does its work.

With two roles configured (MIGRATION_DATABASE_URL, as CI runs) the whole suite already runs as
the application's role and these tests check it as it is. With one role (a developer's
superuser) a throwaway role gets the very grants `migrate` gives (carehub.db_roles) and the
test's transaction switches to it; the rollback removes it again.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django_q.models import OrmQ

from audit.models import AccessLog
from carehub import db_roles
from carehub.history import save_with_history, update_with_history
from patients.models import Patient

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_role(postgres_only):
    """The name of the restricted role the test body runs as."""
    with connection.cursor() as cursor:
        if db_roles.two_roles():
            cursor.execute(
                "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            user, superuser = cursor.fetchone()
            assert (user, superuser) == (db_roles.app_role(), False)
            yield user
            return
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
        role = f"carehub_app_probe_{secrets.token_hex(4)}"
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        for statement in db_roles.grant_statements(connection, role, owner):
            cursor.execute(statement)
        cursor.execute(f"SET LOCAL ROLE {role}")
    yield role


def test_ci_runs_the_suite_as_the_application_role(postgres_only):
    """CI sets CAREHUB_REQUIRE_APP_ROLE=1 with both URLs: the suite must then really connect as
    the restricted role, not fall back to the owner."""
    if os.environ.get("CAREHUB_REQUIRE_APP_ROLE") != "1":
        pytest.skip("CAREHUB_REQUIRE_APP_ROLE is not set (CI sets it with MIGRATION_DATABASE_URL)")
    assert db_roles.two_roles(), "CAREHUB_REQUIRE_APP_ROLE=1 needs MIGRATION_DATABASE_URL"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
            "WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (db_roles.app_role(), False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
            "AND tableowner = current_user"
        )
        assert cursor.fetchone() == (0,)


def refusal(sql: str) -> str:
    """Run `sql` as the test's role; return PostgreSQL's message (the statement must fail)."""
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert refused.value.__cause__.sqlstate == "42501"  # insufficient_privilege
    return str(refused.value)


def history_table() -> str:
    return Patient.history.model._meta.db_table


def test_the_application_role_cannot_truncate_the_access_log_or_history(app_role, patient_a):
    assert "permission denied for table audit_accesslog" in refusal("TRUNCATE audit_accesslog")
    assert "permission denied" in refusal(f"TRUNCATE {history_table()}")
    assert patient_a.history.count() == 1


def test_the_application_role_cannot_disable_the_append_only_trigger(app_role):
    for table in ("audit_accesslog", history_table()):
        message = refusal(f"ALTER TABLE {table} DISABLE TRIGGER carehub_append_only")
        assert f"must be owner of table {table}" in message
        assert "must be owner" in refusal(f"ALTER TABLE {table} DISABLE TRIGGER ALL")


@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET history_change_reason = 'forged'", "DELETE FROM {table}"]
)
def test_the_application_role_cannot_update_or_delete_history(app_role, patient_a, statement):
    message = refusal(statement.format(table=history_table()))
    # Refused by the grants, before the append-only trigger would be reached.
    assert f"permission denied for table {history_table()}" in message
    assert patient_a.history.get().history_change_reason != "forged"


def test_the_application_role_cannot_rewrite_the_access_log(app_role, client, agent_a, patient_a):
    client.force_login(agent_a)
    assert client.get(reverse("admin:patients_patient_change", args=[patient_a.pk])).status_code
    logged = AccessLog.objects.get()
    for statement in (
        "UPDATE audit_accesslog SET object_ids = '[]'",
        "DELETE FROM audit_accesslog",
    ):
        assert "permission denied for table audit_accesslog" in refusal(statement)
    assert AccessLog.objects.get().object_ids == logged.object_ids == [patient_a.pk]


def test_the_application_role_cannot_change_the_schema(app_role):
    assert "permission denied for schema" in refusal("CREATE TABLE forged (id int)")
    assert "must be owner" in refusal("DROP TABLE patients_patient")
    assert "must be owner" in refusal("ALTER TABLE patients_patient ADD COLUMN forged int")
    assert "permission denied" in refusal(
        "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())"
    )


def test_the_application_role_does_its_normal_work(
    app_role, client, agent_a, patient_a, system_user
):
    # A PHI read through admin: a session row, the user's last login, an access-log row.
    client.force_login(agent_a)
    response = client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    assert response.status_code == 200
    assert AccessLog.objects.filter(user=agent_a, object_ids=[patient_a.pk]).exists()
    # Changes with history: one row, then a set-based change (SELECT … FOR UPDATE, UPDATE).
    patient_a.phone = "+16175550111"
    save_with_history(patient_a, actor=system_user, reason="new number")
    update_with_history(
        Patient.objects.filter(pk=patient_a.pk),
        actor=system_user,
        reason="moved",
        status=Patient.Status.MOVED,
    )
    assert [h.history_change_reason for h in patient_a.history.order_by("history_id")][1:] == [
        "new number",
        "moved",
    ]
    # The task queue inserts and deletes its rows; signing out deletes the session.
    OrmQ.objects.create(key="default", payload="probe")
    assert OrmQ.objects.filter(payload="probe").delete()[0] == 1
    client.logout()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (app_role,)


def test_grants_follow_the_kind_of_each_table(app_role):
    protected = set(db_roles.append_only_tables())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, "
            "has_table_privilege(current_user, quote_ident(tablename), 'UPDATE'), "
            "has_table_privilege(current_user, quote_ident(tablename), 'DELETE'), "
            "has_table_privilege(current_user, quote_ident(tablename), 'INSERT'), "
            "has_table_privilege(current_user, quote_ident(tablename), "
            "'TRUNCATE, TRIGGER, REFERENCES') "
            "FROM pg_tables WHERE schemaname = current_schema()"
        )
        rows = {table: flags for table, *flags in cursor.fetchall()}
    assert protected <= set(rows)
    for table, (update, delete, insert, owner_only) in rows.items():
        assert not owner_only, table
        if table in protected:
            assert (update, delete, insert) == (False, False, True), table
        elif table == "django_migrations":
            assert (update, delete, insert) == (False, False, False), table
        else:
            assert (update, delete, insert) == (True, True, True), table


def test_create_app_role_needs_two_roles_configured(settings):
    settings.MIGRATION_DATABASE = None
    with pytest.raises(CommandError, match="MIGRATION_DATABASE_URL"):
        call_command("create_app_role")


def test_a_migration_url_for_another_database_is_refused():
    environment = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": "postgres://carehub_app@127.0.0.1:5432/carehub",
        "MIGRATION_DATABASE_URL": "postgres://postgres@127.0.0.1:5432/elsewhere",
    }
    finished = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert "MIGRATION_DATABASE_URL must name the same database as DATABASE_URL" in finished.stderr
