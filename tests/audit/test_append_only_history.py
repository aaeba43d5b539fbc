"""History cannot be edited or deleted: not through admin, and on PostgreSQL not even in SQL."""

import contextlib

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from audit.immutability import protected_tables
from audit.models import AccessLog
from carehub import db_roles
from carehub.history import history_tables

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def owner_cursor():
    """A connection of its own as the tables' owner, whom only the trigger stops (the
    application's role is stopped before, by its grants: test_database_roles.py). The rows it
    sees must be committed, hence `transaction=True` on the tests using it."""
    login = settings.MIGRATION_DATABASE if db_roles.two_roles() else connection.settings_dict
    with (
        psycopg.connect(
            dbname=connection.settings_dict["NAME"],
            user=login["USER"],
            password=login["PASSWORD"] or None,
            host=login["HOST"] or None,
            port=login["PORT"] or None,
            autocommit=True,
        ) as owner,
        owner.cursor() as cursor,
    ):
        yield cursor


def test_history_pages_cannot_revert_or_edit(client, supervisor_a, patient_a):
    client.force_login(supervisor_a)
    version = patient_a.history.latest()
    url = reverse("admin:patients_patient_simple_history", args=[patient_a.pk, version.history_id])
    assert client.get(url).status_code == 200
    response = client.post(url, {"family_name": "Rewritten", "change_reason": "x"})
    assert response.status_code == 403
    assert not patient_a.history.filter(family_name="Rewritten").exists()


def test_every_history_table_carries_the_append_only_trigger(postgres_only):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = 'carehub_append_only'"
        )
        protected = {row[0] for row in cursor.fetchall()}
    assert set(history_tables()) | {AccessLog._meta.db_table} <= protected
    assert len(history_tables()) >= 9


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET history_change_reason = 'forged'", "DELETE FROM {table}"]
)
def test_postgresql_refuses_update_and_delete_on_history(postgres_only, patient_a, statement):
    table = patient_a.history.model._meta.db_table
    with pytest.raises(psycopg.Error, match="append-only"), owner_cursor() as cursor:
        cursor.execute(statement.format(table=table))
    assert patient_a.history.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_postgresql_refuses_changes_to_the_access_log(postgres_only, client, agent_a, patient_a):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    for statement in (
        "UPDATE audit_accesslog SET object_ids = '[]'",
        "DELETE FROM audit_accesslog",
    ):
        with pytest.raises(psycopg.Error, match="append-only"), owner_cursor() as cursor:
            cursor.execute(statement)
    assert AccessLog.objects.get().object_ids == [patient_a.pk]


def test_protected_tables_cover_every_history_model():
    assert set(history_tables()) <= set(protected_tables())
