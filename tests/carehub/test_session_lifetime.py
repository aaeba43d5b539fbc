"""Sessions end 12 hours after sign-in whatever the activity, and when the user is disabled."""

import datetime as dt

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.urls import reverse

from carehub.history import save_with_history
from carehub.sessions import end_sessions
from tests.carehub.test_two_factor import sign_in, signed_in_user_id
from tests.conftest import enrolled_authenticator

pytestmark = pytest.mark.django_db
SIGN_IN = dt.datetime(2026, 3, 10, 7, 0, tzinfo=dt.UTC)


def test_a_busy_session_still_ends_twelve_hours_after_sign_in(client, agent_a):
    from carehub.two_factor import current_code

    with time_machine.travel(SIGN_IN, tick=False) as clock:
        code = current_code(enrolled_authenticator(agent_a))
        assert sign_in(client, agent_a, code).status_code == 302
        index = reverse("admin:index")
        # Working all day, a request every ten minutes: the idle logoff never fires.
        for _ in range(71):
            clock.shift(dt.timedelta(minutes=10))
            assert client.get(index).status_code == 200
        assert SIGN_IN + dt.timedelta(hours=11, minutes=50) == dt.datetime.now(dt.UTC)
        clock.shift(dt.timedelta(minutes=10, seconds=1))  # 12 hours and a second
        response = client.get(index)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    assert signed_in_user_id(client) is None


def test_an_idle_session_ends_after_fifteen_minutes(client, agent_a):
    with time_machine.travel(SIGN_IN, tick=False) as clock:
        client.force_login(agent_a)
        assert client.get(reverse("admin:index")).status_code == 200
        clock.shift(dt.timedelta(minutes=15, seconds=1))
        response = client.get(reverse("admin:index"))
    assert response.status_code == 302


def test_disabling_a_user_ends_all_their_sessions(client, administrator_a, agent_a, org_a):
    from django.test import Client

    laptop, phone = Client(), Client()
    laptop.force_login(agent_a)
    phone.force_login(agent_a)
    client.force_login(administrator_a)
    assert laptop.get(reverse("admin:index")).status_code == 200
    url = reverse("admin:carehub_user_change", args=[agent_a.pk])
    response = client.post(
        url,
        {
            "username": agent_a.username,
            "is_staff": "on",  # is_active left out: disabled
            "groups": [g.pk for g in agent_a.groups.all()],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "organizations": [org_a.pk],
            "change_reason": "left the company",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    remaining = [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id")]
    assert {s.get_decoded()["_auth_user_id"] for s in remaining} == {str(administrator_a.pk)}
    for device in (laptop, phone):
        assert device.get(reverse("admin:index")).status_code == 302


def test_end_sessions_leaves_other_users_alone(client, agent_a, agent_b, system_user):
    from django.test import Client

    other = Client()
    client.force_login(agent_a)
    other.force_login(agent_b)
    assert end_sessions(agent_a) == 1
    assert other.get(reverse("admin:index")).status_code == 200
    agent_b.is_active = False
    save_with_history(agent_b, actor=system_user, reason="left")  # any path, not only admin
    assert other.get(reverse("admin:index")).status_code == 302
