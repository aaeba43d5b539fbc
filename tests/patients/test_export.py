import pytest
from django.urls import reverse

from audit.models import AccessLog
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db
URL = "admin:patients_patient_changelist"


def export(client, *patients):
    return client.post(
        reverse(URL),
        {"action": "export_csv", "_selected_action": [p.pk for p in patients]},
    )


def test_supervisor_exports_selected_patients_and_the_export_is_logged(
    client, supervisor_a, patient_a
):
    formula = PatientFactory(organization=patient_a.organization, family_name="=HYPERLINK(1)")
    client.force_login(supervisor_a)
    response = export(client, patient_a, formula)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("id,organization,mrn,family_name")
    assert len(lines) == 3
    assert patient_a.mrn in body
    assert "'=HYPERLINK(1)" in body  # never a live formula in a spreadsheet
    entry = AccessLog.objects.get(action="export")
    assert sorted(entry.object_ids) == sorted([patient_a.pk, formula.pk])


def test_export_never_includes_another_organizations_patient(
    client, supervisor_a, patient_a, patient_b
):
    client.force_login(supervisor_a)
    body = b"".join(export(client, patient_a, patient_b).streaming_content).decode()
    assert patient_a.mrn in body
    assert patient_b.mrn not in body


@pytest.mark.parametrize("persona_name", ["agent_a", "coordinator_a"])
def test_roles_without_export_permission_cannot_export(request, client, persona_name, patient_a):
    client.force_login(request.getfixturevalue(persona_name))
    response = export(client, patient_a)
    assert not hasattr(response, "streaming_content")
    assert not AccessLog.objects.filter(action="export").exists()
