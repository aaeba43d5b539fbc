"""Requests that used to end in HTTP 500 get a form error or a 4xx naming the problem."""

import pytest
from django.urls import reverse

from audit.models import AccessLog
from patients.models import Patient

pytestmark = pytest.mark.django_db


def new_patient(organization) -> dict:
    return {
        "organization": organization,
        "mrn": "NEW-1",
        "given_name": "Ana",
        "family_name": "Rivera",
        "birth_date": "1970-05-04",
        "sex": "female",
        "status": "active",
        "preferred_language": "en",
        "timezone": "America/Chicago",
        "change_reason": "registration",
    }


@pytest.mark.parametrize("which", ["empty", "unknown", "foreign"])
def test_adding_a_patient_without_one_of_your_organizations_is_a_form_error(
    client, supervisor_a, org_a, org_b, which
):
    organization = {"empty": "", "unknown": "987654", "foreign": str(org_b.pk)}[which]
    client.force_login(supervisor_a)
    response = client.post(reverse("admin:patients_patient_add"), new_patient(organization))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "organization" in errors, errors
    assert not Patient.objects.filter(mrn="NEW-1").exists()


def test_adding_a_patient_to_your_organization_still_works(client, supervisor_a, org_a):
    client.force_login(supervisor_a)
    response = client.post(reverse("admin:patients_patient_add"), new_patient(str(org_a.pk)))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Patient.objects.get(mrn="NEW-1").organization == org_a


@pytest.mark.parametrize("term", ["a\x00b", "\x00"])
def test_a_nul_in_the_api_search_is_a_400(client, agent_a, patient_a, term):
    client.force_login(agent_a)
    response = client.get("/api/patients/", {"q": term})
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert not AccessLog.objects.filter(user=agent_a).exists()
