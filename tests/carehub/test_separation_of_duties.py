"""Separation of duties: nobody grants themself a role, only a superuser appoints auditors, and
one person is never both Auditor and Administrator (issue 9)."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from carehub import roles
from carehub.errors import DomainError, NotAllowed
from carehub.models import User
from carehub.services import assign_role, set_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", password="a-long-root-password-1")


def role_pks(*names):
    return [Group.objects.get(name=name).pk for name in names]


def test_an_administrator_cannot_grant_themself_a_role(administrator_a):
    with pytest.raises(NotAllowed, match="themself"):
        set_roles(
            administrator_a,
            {roles.ADMINISTRATOR, roles.SUPERVISOR},
            actor=administrator_a,
            reason="promotion",
        )
    assert [g.name for g in administrator_a.groups.all()] == [roles.ADMINISTRATOR]


def test_not_even_a_superuser_grants_themself_a_role(superuser):
    with pytest.raises(NotAllowed, match="themself"):
        assign_role(superuser, roles.SUPERVISOR, actor=superuser, reason="why not")


def test_the_admin_form_refuses_a_role_for_oneself(client, administrator_a, org_a):
    client.force_login(administrator_a)
    url = reverse("admin:carehub_user_change", args=[administrator_a.pk])
    data = {
        "username": administrator_a.username,
        "is_active": "on",
        "is_staff": "on",
        "groups": role_pks(roles.ADMINISTRATOR, roles.SUPERVISOR),
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "organizations": [org_a.pk],
        "change_reason": "promotion",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "themself" in str(response.context["adminform"].form.errors["groups"])
    assert [g.name for g in administrator_a.groups.all()] == [roles.ADMINISTRATOR]


def test_an_administrator_cannot_appoint_an_auditor(administrator_a, agent_a):
    with pytest.raises(NotAllowed, match="superuser appoints auditors"):
        set_roles(agent_a, {roles.AUDITOR}, actor=administrator_a, reason="audit")
    assert [g.name for g in agent_a.groups.all()] == [roles.AGENT]


def test_the_admin_form_does_not_offer_the_auditor_role(client, administrator_a, org_a):
    client.force_login(administrator_a)
    form = client.get(reverse("admin:carehub_user_add")).context["adminform"].form
    assert roles.AUDITOR not in {g.name for g in form.fields["groups"].queryset}
    response = client.post(
        reverse("admin:carehub_user_add"),
        {
            "username": "newauditor",
            "password1": "a-sturdy-passphrase-91",
            "password2": "a-sturdy-passphrase-91",
            "usable_password": "true",
            "groups": role_pks(roles.AUDITOR),
            "organizations": [org_a.pk],
            "change_reason": "new auditor",
        },
    )
    assert response.status_code == 200
    assert "groups" in response.context["adminform"].form.errors
    assert not User.objects.filter(username="newauditor").exists()


def test_a_superuser_appoints_an_auditor(superuser, agent_a):
    set_roles(agent_a, {roles.AUDITOR}, actor=superuser, reason="compliance team")
    assert [g.name for g in agent_a.groups.all()] == [roles.AUDITOR]
    record = agent_a.history.latest()
    assert (record.history_user, record.history_change_reason) == (superuser, "compliance team")


@pytest.mark.parametrize("first", [roles.AUDITOR, roles.ADMINISTRATOR])
def test_nobody_is_both_auditor_and_administrator(superuser, agent_a, system_user, first):
    second = roles.ADMINISTRATOR if first == roles.AUDITOR else roles.AUDITOR
    set_roles(agent_a, {first}, actor=superuser, reason="first role")
    with pytest.raises(DomainError, match="never both Auditor and Administrator"):
        assign_role(agent_a, second, actor=superuser, reason="second role")
    with pytest.raises(DomainError, match="never both"):
        assign_role(agent_a, second, actor=system_user, reason="second role")
    assert [g.name for g in agent_a.groups.all()] == [first]


def test_a_superuser_page_edit_of_both_roles_is_a_form_error(client, superuser, agent_a, org_a):
    client.force_login(superuser)
    url = reverse("admin:carehub_user_change", args=[agent_a.pk])
    response = client.post(
        url,
        {
            "username": agent_a.username,
            "is_active": "on",
            "is_staff": "on",
            "groups": role_pks(roles.AUDITOR, roles.ADMINISTRATOR),
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "organizations": [org_a.pk],
            "change_reason": "both",
        },
    )
    assert response.status_code == 200
    assert "never both" in str(response.context["adminform"].form.errors["groups"])
