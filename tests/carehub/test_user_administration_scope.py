"""An administrator never reaches beyond their own organizations through a shared user (issue 9).

The attack: an Administrator of B changes the password, roles or active flag of a user who also
holds A, signs in as that user and reads A's patients. Such a user's page is read-only for them.
"""

import pytest
from django.urls import reverse

from carehub import roles
from carehub.errors import NotAllowed
from carehub.models import User
from carehub.services import grant_organization, set_organizations, set_roles
from patients.selectors import organizations_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def administrator_b(persona, org_b):
    return persona("administrator", org_b)


@pytest.fixture
def agent_ab(persona, org_a, org_b):
    return persona("agent", org_a, org_b)


def change_data(user, **overrides):
    return {
        "username": user.username,
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in user.groups.all()],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "organizations": [],
        "change_reason": "attempt",
        **overrides,
    }


def test_a_user_who_also_holds_another_organization_is_read_only(
    client, administrator_b, agent_ab, org_a
):
    client.force_login(administrator_b)
    url = reverse("admin:carehub_user_change", args=[agent_ab.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert b'name="password"' not in page.content
    assert b"1 you do not administer" in page.content
    assert org_a.name.encode() not in page.content  # the other client is not named

    data = change_data(agent_ab, is_active="")
    data.pop("is_active")
    assert client.post(url, data).status_code == 403
    agent_ab.refresh_from_db()
    assert agent_ab.is_active


def test_the_password_form_is_refused_for_such_a_user(client, administrator_b, agent_ab):
    client.force_login(administrator_b)
    url = reverse("admin:auth_user_password_change", args=[agent_ab.pk])
    new = "an-attackers-passphrase-1"
    assert client.get(url).status_code == 403
    response = client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 403
    agent_ab.refresh_from_db()
    assert not agent_ab.check_password(new)


def test_services_refuse_the_same_change(administrator_b, agent_ab, org_b):
    with pytest.raises(NotAllowed):
        set_roles(agent_ab, {roles.ADMINISTRATOR}, actor=administrator_b, reason="attack")
    with pytest.raises(NotAllowed):
        set_organizations(
            agent_ab,
            [],
            within=organizations_for(administrator_b),
            actor=administrator_b,
            reason="attack",
        )
    assert [g.name for g in agent_ab.groups.all()] == [roles.AGENT]
    assert set(organizations_for(agent_ab)) >= {org_b}


def test_a_disabled_user_still_counts_every_grant(client, administrator_b, agent_ab):
    from carehub.history import save_with_history

    agent_ab.is_active = False
    save_with_history(agent_ab, actor=administrator_b, reason="left")  # model save, no admin
    client.force_login(administrator_b)
    url = reverse("admin:carehub_user_change", args=[agent_ab.pk])
    assert client.post(url, change_data(agent_ab)).status_code == 403
    agent_ab.refresh_from_db()
    assert not agent_ab.is_active


def test_a_superuser_is_never_changed_by_an_administrator(
    client, administrator_b, org_b, system_user
):
    root = User.objects.create_superuser("root", password="a-long-root-password-1")
    grant_organization(root, org_b, actor=system_user, reason="test")
    client.force_login(administrator_b)
    url = reverse("admin:auth_user_password_change", args=[root.pk])
    assert client.get(url).status_code == 403


def test_a_user_of_only_their_organizations_is_changed(client, administrator_b, agent_b):
    client.force_login(administrator_b)
    url = reverse("admin:carehub_user_change", args=[agent_b.pk])
    data = change_data(agent_b, organizations=[o.pk for o in organizations_for(agent_b)])
    data.pop("is_active")
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    agent_b.refresh_from_db()
    assert not agent_b.is_active


def test_the_access_section_is_shown_once(client, administrator_a, agent_a):
    client.force_login(administrator_a)
    page = client.get(reverse("admin:carehub_user_change", args=[agent_a.pk]))
    names = [fieldset.name for fieldset in page.context["adminform"]]
    assert names.count("Access") == 1
    assert page.content.count(b'name="change_reason"') == 1


def test_the_add_page_shows_the_access_section_once(client, administrator_a):
    client.force_login(administrator_a)
    page = client.get(reverse("admin:carehub_user_add"))
    names = [fieldset.name for fieldset in page.context["adminform"]]
    assert names.count("Access") == 1
