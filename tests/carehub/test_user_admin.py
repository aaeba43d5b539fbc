"""Administrators onboard users of their own organizations: roles and grants, with history."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from guardian.models import UserObjectPermission

from carehub import roles
from carehub.models import User
from patients.selectors import organizations_for

pytestmark = pytest.mark.django_db


def add_user(client, **overrides):
    data = {
        "username": "newagent",
        "password1": "a-sturdy-passphrase-91",
        "password2": "a-sturdy-passphrase-91",
        "groups": [Group.objects.get(name=roles.AGENT).pk],
        "change_reason": "new hire",
        "usable_password": "true",
        **overrides,
    }
    return client.post(reverse("admin:carehub_user_add"), data)


def test_administrator_creates_an_agent_of_their_organization(client, administrator_a, org_a):
    client.force_login(administrator_a)
    response = add_user(client, organizations=[org_a.pk])
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(username="newagent")
    assert list(organizations_for(user)) == [org_a]
    assert [g.name for g in user.groups.all()] == [roles.AGENT]
    grant = UserObjectPermission.history.get(user=user)
    assert (grant.history_user, grant.history_change_reason) == (administrator_a, "new hire")
    assert user.history.earliest().history_user == administrator_a
    assert client.get(reverse("admin:carehub_user_change", args=[user.pk])).status_code == 200


def test_administrator_cannot_grant_another_organization(client, administrator_a, org_b):
    client.force_login(administrator_a)
    response = add_user(client, organizations=[org_b.pk])
    assert response.status_code == 200
    assert "organizations" in response.context["adminform"].form.errors
    assert not User.objects.filter(username="newagent").exists()


def test_administrator_revokes_a_grant_and_history_keeps_it(
    client, administrator_a, agent_a, org_a
):
    client.force_login(administrator_a)
    url = reverse("admin:carehub_user_change", args=[agent_a.pk])
    form = client.get(url).context["adminform"].form
    assert [org.pk for org in form.fields["organizations"].initial] == [org_a.pk]
    data = {
        "username": agent_a.username,
        "is_active": "on",
        "is_staff": "on",
        "groups": [g.pk for g in agent_a.groups.all()],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "organizations": [],
        "change_reason": "left the Riverside team",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(organizations_for(agent_a)) == []
    revoked = UserObjectPermission.history.filter(user=agent_a, history_type="-").get()
    assert (revoked.history_user, revoked.history_change_reason) == (
        administrator_a,
        "left the Riverside team",
    )
    # A user who also holds another client's organization is not this administrator's to change
    # (tests/carehub/test_user_administration_scope.py).


def test_administrator_cannot_make_anyone_superuser(client, administrator_a, agent_a):
    client.force_login(administrator_a)
    form = (
        client.get(reverse("admin:carehub_user_change", args=[agent_a.pk]))
        .context["adminform"]
        .form
    )
    assert "is_superuser" not in form.fields
    assert "user_permissions" not in form.fields
