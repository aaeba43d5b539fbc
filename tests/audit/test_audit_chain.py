"""Tamper evidence: audit rows are sealed into a hash chain; the verifier names every row changed,
removed or inserted since, and exits non-zero."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.urls import reverse
from django_q.models import Schedule

from audit import sealing, tasks
from audit.models import AccessLog
from audit.schedule import SEAL_NAME, ensure_seal_schedule
from carehub import db_roles
from carehub.history import save_with_history
from patients.models import Patient

NOW = dt.timedelta(0)


def verify() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_audit_chain", stdout=out)
    except CommandError as error:
        return 1, out.getvalue() + str(error)
    return 0, out.getvalue()


def read_patient(client, user, patient) -> None:
    client.force_login(user)
    assert (
        client.get(reverse("admin:patients_patient_change", args=[patient.pk])).status_code == 200
    )


@pytest.mark.django_db
def test_sealed_rows_verify_clean_and_sealing_twice_seals_nothing(
    client, agent_a, patient_a, system_user
):
    read_patient(client, agent_a, patient_a)
    patient_a.phone = "+16175550111"
    save_with_history(patient_a, actor=system_user, reason="new number")
    made = sealing.seal_new_rows(settle=NOW)
    tables = {seal.table for seal in made}
    assert {"audit_accesslog", Patient.history.model._meta.db_table} <= tables
    assert sealing.seal_new_rows(settle=NOW) == []
    status, output = verify()
    assert status == 0, output
    assert "audit_accesslog: latest digest" in output


@pytest.mark.django_db
def test_rows_still_settling_wait_for_the_next_run(client, agent_a, patient_a):
    read_patient(client, agent_a, patient_a)
    # Written just now: a lower id may still be committing, so neither the read nor the
    # personas' history rows are sealed yet.
    sealed = {seal.table for seal in sealing.seal_new_rows()}
    assert "audit_accesslog" not in sealed
    assert not sealed & {"carehub_historicaluser", Patient.history.model._meta.db_table}


@pytest.mark.django_db
def test_each_seal_chains_onto_the_previous_one(client, agent_a, patient_a):
    read_patient(client, agent_a, patient_a)
    (first,) = [s for s in sealing.seal_new_rows(settle=NOW) if s.table == "audit_accesslog"]
    read_patient(client, agent_a, patient_a)
    (second,) = [s for s in sealing.seal_new_rows(settle=NOW) if s.table == "audit_accesslog"]
    assert first.previous_digest == sealing.GENESIS
    assert (second.previous_id, second.previous_digest) == (first.pk, first.digest)
    assert second.first_id > first.last_id
    assert second.digest == sealing.chain(first.digest, bytes(second.row_digests))


@pytest.mark.django_db
def test_the_task_seals_and_the_schedule_is_created_once():
    assert Schedule.objects.filter(name=SEAL_NAME, func="audit.tasks.seal_audit_rows").count() == 1
    ensure_seal_schedule()
    assert Schedule.objects.filter(name=SEAL_NAME).count() == 1
    assert isinstance(tasks.seal_audit_rows(), int)


@pytest.mark.django_db
def test_auditors_see_the_seals_and_nobody_changes_them(
    client, auditor_a, agent_a, patient_a, administrator_a
):
    read_patient(client, agent_a, patient_a)
    seal = next(s for s in sealing.seal_new_rows(settle=NOW) if s.table == "audit_accesslog")
    client.force_login(auditor_a)
    page = client.get(reverse("admin:audit_seal_changelist"))
    assert page.status_code == 200
    assert seal.digest[:16] in page.content.decode()
    assert client.get(reverse("admin:audit_seal_change", args=[seal.pk])).status_code == 200
    assert client.post(reverse("admin:audit_seal_change", args=[seal.pk]), {}).status_code == 403
    assert client.get(reverse("admin:audit_seal_delete", args=[seal.pk])).status_code == 403
    client.force_login(agent_a)
    assert client.get(reverse("admin:audit_seal_changelist")).status_code == 403
    client.force_login(administrator_a)
    assert client.get(reverse("admin:audit_seal_changelist")).status_code == 403


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_changed_removed_and_inserted_sealed_rows_are_each_reported(
    postgres_only, client, agent_a, patient_a, system_user
):
    for _ in range(4):
        read_patient(client, agent_a, patient_a)
    # A rolled-back insert uses up a sequence value: a hole inside the range that gets sealed.
    with pytest.raises(RuntimeError), transaction.atomic():
        AccessLog.objects.create(user=agent_a, action="view", channel="admin", model="x", path="/x")
        hole = AccessLog.objects.latest("id").pk
        raise RuntimeError("rolled back")
    read_patient(client, agent_a, patient_a)
    patient_a.phone = "+16175550111"
    save_with_history(patient_a, actor=system_user, reason="new number")
    sealing.seal_new_rows(settle=NOW)
    assert verify()[0] == 0

    logged = list(AccessLog.objects.order_by("id").values_list("id", flat=True))
    changed_id, removed_id = logged[0], logged[1]
    history = Patient.history.model._meta.db_table
    forged_history = Patient.history.order_by("history_id").first().history_id
    # As the tables' owner, past the append-only trigger: what a DBA or an intruder could do.
    with db_roles.as_owner(), connection.cursor() as cursor:
        for table in ("audit_accesslog", history):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER carehub_append_only")
        cursor.execute(
            "UPDATE audit_accesslog SET client_address = '10.9.9.9' WHERE id = %s", [changed_id]
        )
        cursor.execute("DELETE FROM audit_accesslog WHERE id = %s", [removed_id])
        cursor.execute(
            "INSERT INTO audit_accesslog (id, at, user_id, organization_id, action, channel, "
            "model, object_ids, patient_ids, object_count, query, path) "
            "SELECT %s, at, user_id, organization_id, action, channel, model, object_ids, "
            "patient_ids, object_count, query, path FROM audit_accesslog WHERE id = %s",
            [hole, logged[2]],
        )
        cursor.execute(
            f"UPDATE {history} SET history_change_reason = 'forged' WHERE history_id = %s",
            [forged_history],
        )
        for table in ("audit_accesslog", history):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER carehub_append_only")

    status, output = verify()
    assert status == 1
    assert f"audit_accesslog row {changed_id}: changed" in output
    assert f"audit_accesslog row {removed_id}: removed" in output
    assert f"audit_accesslog row {hole}: inserted" in output
    assert f"{history} row {forged_history}: changed" in output
    assert "4 difference(s)" in output
    findings, _heads = sealing.verify_chain()
    assert len(findings) == 4


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_forged_seal_is_reported(postgres_only, client, agent_a, patient_a):
    read_patient(client, agent_a, patient_a)
    read_patient(client, agent_a, patient_a)
    seal = next(s for s in sealing.seal_new_rows(settle=NOW) if s.table == "audit_accesslog")
    with db_roles.as_owner(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_seal DISABLE TRIGGER carehub_append_only")
        # Drop the first row from the seal's list and recompute nothing: the digest no longer fits.
        cursor.execute(
            "UPDATE audit_seal SET row_digests = substring(row_digests from 41) WHERE id = %s",
            [seal.pk],
        )
        cursor.execute("ALTER TABLE audit_seal ENABLE TRIGGER carehub_append_only")
    status, output = verify()
    assert status == 1
    assert f"seal altered (seal #{seal.pk})" in output
