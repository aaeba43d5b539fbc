"""Every persona sees its own organization's records and nothing of another client's:
not by list, search, autocomplete, direct URL, history URL or API."""

import json

import pytest
from django.urls import reverse

from tests.conftest import PERSONAS_OF_ORG_A
from tests.patients.factories import PayerProgramFactory, ProviderFactory, SiteFactory

pytestmark = pytest.mark.django_db


def admin_urls(patient):
    return {
        "change": reverse("admin:patients_patient_change", args=[patient.pk]),
        "history": reverse("admin:patients_patient_history", args=[patient.pk]),
    }


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
def test_changelist_shows_own_patients_only(request, client, persona_name, patient_a, patient_b):
    client.force_login(request.getfixturevalue(persona_name))
    response = client.get(reverse("admin:patients_patient_changelist"))
    assert response.status_code == 200
    shown = {row.pk for row in response.context["cl"].result_list}
    assert shown == {patient_a.pk}


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
def test_search_never_finds_another_organizations_patient(
    request, client, persona_name, patient_a, patient_b
):
    client.force_login(request.getfixturevalue(persona_name))
    url = reverse("admin:patients_patient_changelist")
    for term in (patient_b.mrn, "Alvara", patient_b.member_id or patient_b.mrn):
        shown = list(client.get(url, {"q": term}).context["cl"].result_list)
        assert patient_b not in shown
    assert list(client.get(url, {"q": "Alva"}).context["cl"].result_list) == [patient_a]


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
@pytest.mark.parametrize("view", ["change", "history"])
def test_direct_urls_to_another_organizations_patient_are_not_found(
    request, client, persona_name, view, patient_a, patient_b
):
    client.force_login(request.getfixturevalue(persona_name))
    assert client.get(admin_urls(patient_a)[view]).status_code == 200
    assert client.get(admin_urls(patient_b)[view]).status_code == 404


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
def test_history_version_url_of_another_organizations_patient_is_not_found(
    request, client, persona_name, patient_b
):
    client.force_login(request.getfixturevalue(persona_name))
    version = patient_b.history.latest()
    url = reverse("admin:patients_patient_simple_history", args=[patient_b.pk, version.history_id])
    assert client.get(url).status_code == 404


def test_agent_of_org_b_sees_org_b_only(client, agent_b, patient_a, patient_b):
    client.force_login(agent_b)
    shown = client.get(reverse("admin:patients_patient_changelist")).context["cl"].result_list
    assert list(shown) == [patient_b]
    assert client.get(admin_urls(patient_a)["change"]).status_code == 404


def test_staff_user_without_grants_sees_no_patients(client, persona, patient_a, org_a):
    user = persona("agent")
    from carehub.history import get_system_user
    from carehub.services import revoke_organization

    revoke_organization(user, org_a, actor=get_system_user(), reason="left the team")
    client.force_login(user)
    response = client.get(reverse("admin:patients_patient_changelist"))
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
@pytest.mark.parametrize(
    ("field", "factory"),
    [
        ("attributed_site", SiteFactory),
        ("attributed_provider", ProviderFactory),
        ("payer_program", PayerProgramFactory),
    ],
)
def test_autocomplete_offers_own_organization_only(
    request, client, persona_name, field, factory, org_a, org_b
):
    mine = factory(organization=org_a)
    theirs = factory(organization=org_b)
    user = request.getfixturevalue(persona_name)
    client.force_login(user)
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "patients", "model_name": "patient", "field_name": field, "term": ""},
    )
    assert response.status_code == 200
    ids = {int(item["id"]) for item in json.loads(response.content)["results"]}
    assert mine.pk in ids
    assert theirs.pk not in ids


def test_foreign_key_choices_refuse_another_organizations_site(
    client, supervisor_a, patient_a, org_b
):
    foreign_site = SiteFactory(organization=org_b)
    client.force_login(supervisor_a)
    url = admin_urls(patient_a)["change"]
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        attributed_site=foreign_site.pk,
        birth_date=patient_a.birth_date.isoformat(),
        change_reason="moved clinic",
    )
    response = client.post(url, data)
    assert response.status_code == 200  # the form is shown again with an error
    assert "attributed_site" in response.context["adminform"].form.errors
    patient_a.refresh_from_db()
    assert patient_a.attributed_site_id != foreign_site.pk


@pytest.mark.parametrize(
    ("model", "factory"),
    [("site", SiteFactory), ("provider", ProviderFactory), ("payerprogram", PayerProgramFactory)],
)
@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
def test_reference_lists_and_pages_are_scoped(
    request, client, persona_name, model, factory, org_a, org_b
):
    mine, theirs = factory(organization=org_a), factory(organization=org_b)
    client.force_login(request.getfixturevalue(persona_name))
    listed = client.get(reverse(f"admin:patients_{model}_changelist")).context["cl"].result_list
    assert list(listed) == [mine]
    assert (
        client.get(reverse(f"admin:patients_{model}_change", args=[theirs.pk])).status_code == 404
    )
    history = reverse(f"admin:patients_{model}_history", args=[theirs.pk])
    assert client.get(history).status_code == 404


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
def test_organization_list_shows_granted_organizations_only(
    request, client, persona_name, org_a, org_b
):
    client.force_login(request.getfixturevalue(persona_name))
    listed = client.get(reverse("admin:patients_organization_changelist")).context["cl"]
    assert list(listed.result_list) == [org_a]
    url = reverse("admin:patients_organization_change", args=[org_b.pk])
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
def test_api_lists_and_opens_own_patients_only(request, client, persona_name, patient_a, patient_b):
    client.force_login(request.getfixturevalue(persona_name))
    listed = client.get("/api/patients/").json()["results"]
    assert [row["id"] for row in listed] == [patient_a.pk]
    assert client.get(f"/api/patients/{patient_a.pk}/").status_code == 200
    assert client.get(f"/api/patients/{patient_b.pk}/").status_code == 404
    assert client.get("/api/patients/", {"q": patient_b.mrn}).json()["results"] == []


def test_api_refuses_anonymous_callers(client, patient_a):
    assert client.get("/api/patients/").status_code == 403
    assert client.get(f"/api/patients/{patient_a.pk}/").status_code == 403


def test_administrator_sees_users_of_own_organization_only(
    client, administrator_a, agent_a, agent_b
):
    client.force_login(administrator_a)
    listed = client.get(reverse("admin:carehub_user_changelist")).context["cl"].result_list
    assert agent_a in listed
    assert agent_b not in listed
    assert client.get(reverse("admin:carehub_user_change", args=[agent_b.pk])).status_code == 404
