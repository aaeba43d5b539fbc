"""Every change to every tracked model leaves a history row naming the acting user (or the
system user) and, where a service made it, the reason."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from guardian.models import UserObjectPermission

from carehub import roles
from carehub.history import tracked_models
from carehub.models import User
from carehub.services import assign_role, grant_organization, revoke_organization
from patients.models import Organization, Patient, PayerProgram, Provider, Site
from patients.services import create_organization
from tests.patients.factories import PayerProgramFactory, ProviderFactory, SiteFactory

pytestmark = pytest.mark.django_db


def test_every_operational_model_is_tracked():
    tracked = set(tracked_models())
    expected = {
        Organization,
        Site,
        Provider,
        PayerProgram,
        Patient,
        User,
        Group,
        UserObjectPermission,
    }
    assert expected <= tracked


def test_patient_change_in_admin_names_the_user_and_reason(client, agent_a, patient_a):
    client.force_login(agent_a)
    url = reverse("admin:patients_patient_change", args=[patient_a.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        phone="+16175550199",
        birth_date=patient_a.birth_date.isoformat(),
        change_reason="patient called with a new number",
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    latest = patient_a.history.latest()
    assert latest.phone == "+16175550199"
    assert latest.history_user == agent_a
    assert latest.history_change_reason == "patient called with a new number"


def test_admin_change_without_reason_is_refused(client, agent_a, patient_a):
    client.force_login(agent_a)
    url = reverse("admin:patients_patient_change", args=[patient_a.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(phone="+16175550199", birth_date=patient_a.birth_date.isoformat())
    response = client.post(url, data)
    assert "change_reason" in response.context["adminform"].form.errors
    patient_a.refresh_from_db()
    assert patient_a.phone != "+16175550199"


@pytest.mark.parametrize(
    ("model", "factory", "field", "value"),
    [
        ("site", SiteFactory, "name", "Renamed clinic"),
        ("provider", ProviderFactory, "specialty", "Geriatrics"),
        ("payerprogram", PayerProgramFactory, "name", "Renamed program"),
    ],
)
def test_reference_change_in_admin_names_the_user(
    client, administrator_a, org_a, model, factory, field, value
):
    row = factory(organization=org_a)
    client.force_login(administrator_a)
    url = reverse(f"admin:patients_{model}_change", args=[row.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update({field: value, "change_reason": "correction"})
    if "organization" in form.fields:
        data["organization"] = org_a.pk
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    latest = row.history.latest()
    assert getattr(latest, field) == value
    assert latest.history_user == administrator_a
    assert latest.history_change_reason == "correction"


def test_organization_change_in_admin_names_the_user(client, administrator_a, org_a):
    client.force_login(administrator_a)
    url = reverse("admin:patients_organization_change", args=[org_a.pk])
    response = client.post(
        url,
        {
            "name": "Riverside Health",
            "kind": "practice",
            "is_active": "on",
            "change_reason": "rebrand",
        },
    )
    assert response.status_code == 302
    latest = org_a.history.latest()
    assert (latest.name, latest.history_user, latest.history_change_reason) == (
        "Riverside Health",
        administrator_a,
        "rebrand",
    )


def test_services_record_actor_and_reason_for_users_grants_and_organizations(system_user, org_b):
    user = User.objects.create_user(username="newhire", password="x" * 20)
    assign_role(user, roles.AGENT, actor=system_user, reason="onboarding")
    role_row = user.history.latest()
    assert role_row.history_user == system_user
    assert role_row.history_change_reason == "onboarding"
    assert [g.group.name for g in role_row.groups.all()] == [roles.AGENT]

    grant_organization(user, org_b, actor=system_user, reason="assigned to Lakeshore")
    granted = UserObjectPermission.history.filter(user=user).latest()
    assert (granted.history_type, granted.history_user, granted.history_change_reason) == (
        "+",
        system_user,
        "assigned to Lakeshore",
    )

    revoke_organization(user, org_b, actor=system_user, reason="moved team")
    revoked = UserObjectPermission.history.filter(user=user).latest()
    assert (revoked.history_type, revoked.history_change_reason) == ("-", "moved team")

    organization = create_organization(
        slug="harbor", name="Harbor Clinic", kind="practice", actor=system_user, reason="new client"
    )
    created = organization.history.get()
    assert (created.history_user, created.history_change_reason) == (system_user, "new client")


def test_seed_demo_command_acts_as_the_system_user(settings, system_user):
    settings.DEBUG = True
    call_command("seed_demo", patients=6)
    for model in (Organization, Site, Provider, PayerProgram, Patient, UserObjectPermission):
        users = set(model.history.values_list("history_user__username", flat=True))
        assert users == {system_user.username}, model
    assert set(
        User.history.exclude(username=system_user.username).values_list(
            "history_user__username", flat=True
        )
    ) == {system_user.username}


def test_system_user_cannot_sign_in(client, system_user):
    assert not system_user.is_active
    assert not system_user.has_usable_password()
    assert not client.login(username=system_user.username, password="")
