"""Opening a patient, a patient list or a patient's history writes a PHI access-log row."""

import pytest
from django.urls import reverse

from audit.models import AccessLog
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_opening_a_patient_in_admin_is_logged(client, agent_a, patient_a):
    client.force_login(agent_a)
    client.get(
        reverse("admin:patients_patient_change", args=[patient_a.pk]), REMOTE_ADDR="10.1.2.3"
    )
    entry = AccessLog.objects.get(action="view")
    assert (entry.user, entry.model, entry.object_ids, entry.channel) == (
        agent_a,
        "patients.patient",
        [patient_a.pk],
        "admin",
    )
    assert entry.client_address == "10.1.2.3"
    assert entry.organization_id == patient_a.organization_id


def test_a_patient_list_logs_exactly_the_ids_shown(client, agent_a, org_a, patient_a):
    others = PatientFactory.create_batch(3, organization=org_a)
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_changelist"))
    entry = AccessLog.objects.get(action="list")
    assert sorted(entry.object_ids) == sorted([patient_a.pk, *[p.pk for p in others]])
    assert entry.object_count == 4


def test_a_search_is_logged_with_its_terms(client, agent_a, patient_a):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_changelist"), {"q": patient_a.mrn})
    entry = AccessLog.objects.get(action="search")
    assert entry.object_ids == [patient_a.pk]
    assert patient_a.mrn in entry.query


def test_history_page_and_api_reads_are_logged(client, agent_a, patient_a):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_history", args=[patient_a.pk]))
    client.get(f"/api/patients/{patient_a.pk}/")
    client.get("/api/patients/")
    logged = {
        (action, channel, tuple(ids))
        for action, channel, ids in AccessLog.objects.values_list("action", "channel", "object_ids")
    }
    assert logged == {
        ("history", "admin", (patient_a.pk,)),
        ("view", "api", (patient_a.pk,)),
        ("list", "api", (patient_a.pk,)),
    }


def test_refused_reads_of_another_organization_log_nothing(client, agent_a, patient_b):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_change", args=[patient_b.pk]))
    client.get(f"/api/patients/{patient_b.pk}/")
    assert not AccessLog.objects.exists()


def test_auditor_browses_the_log_of_own_organization(
    client, agent_a, agent_b, auditor_a, patient_a, patient_b
):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    client.force_login(agent_b)
    client.get(reverse("admin:patients_patient_change", args=[patient_b.pk]))

    client.force_login(auditor_a)
    response = client.get(reverse("admin:audit_accesslog_changelist"))
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert [(row.user, row.object_ids) for row in rows] == [(agent_a, [patient_a.pk])]
    by_record = client.get(reverse("admin:audit_accesslog_changelist"), {"q": str(patient_a.pk)})
    assert len(by_record.context["cl"].result_list) == 1


@pytest.mark.parametrize("persona_name", ["agent_a", "supervisor_a", "coordinator_a"])
def test_only_auditors_open_the_access_log(request, client, persona_name):
    client.force_login(request.getfixturevalue(persona_name))
    assert client.get(reverse("admin:audit_accesslog_changelist")).status_code == 403


def test_nobody_can_change_or_delete_the_access_log(
    client, agent_a, auditor_a, patient_a, django_user_model
):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    entry = AccessLog.objects.get()
    root = django_user_model.objects.create_superuser("root", password="x" * 20)
    for user in (auditor_a, root):
        client.force_login(user)
        change = reverse("admin:audit_accesslog_change", args=[entry.pk])
        delete = reverse("admin:audit_accesslog_delete", args=[entry.pk])
        assert client.post(change, {"object_count": 0}).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        assert client.get(reverse("admin:audit_accesslog_add")).status_code == 403
    entry.refresh_from_db()
    assert entry.object_count == 1
