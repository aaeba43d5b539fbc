import io

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from carehub import roles
from patients.demo import demo_usernames
from patients.models import Organization, Patient
from patients.selectors import patients_for

pytestmark = pytest.mark.django_db


def test_seed_demo_refuses_to_run_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo", patients=10)
    assert not Organization.objects.exists()


def test_seed_demo_creates_two_clients_patients_and_a_user_per_role(settings, client):
    settings.DEBUG = True
    call_command("seed_demo", patients=21)
    assert Organization.objects.count() == 2
    assert Patient.objects.count() == 21
    expected = {
        "agent",
        "supervisor",
        "coordinator",
        "auditor",
        "admin",
        "agent2",
        "supervisor2",
        "coordinator2",
        "auditor2",
        "admin2",
    }
    assert {name for name, _, _ in demo_usernames()} == expected
    for username, _role, _org in demo_usernames():
        code = io.StringIO()
        call_command("demo_otp", username, stdout=code, stderr=io.StringIO())
        signed_in = client.post(
            "/admin/login/",
            {
                "username": username,
                "password": settings.CAREHUB_DEMO_PASSWORD,
                "code": code.getvalue().strip(),
            },
        )
        assert signed_in.status_code == 302, username
        assert client.get("/admin/").status_code == 200
        client.logout()


def test_demo_agents_see_only_their_own_organization(settings, django_user_model):
    settings.DEBUG = True
    call_command("seed_demo", patients=20)
    agent, agent2 = (django_user_model.objects.get(username=n) for n in ("agent", "agent2"))
    assert agent.groups.get().name == roles.AGENT
    mine = set(patients_for(agent).values_list("organization__slug", flat=True))
    theirs = set(patients_for(agent2).values_list("organization__slug", flat=True))
    assert mine == {"riverside"}
    assert theirs == {"lakeshore"}


def seeded_people() -> list[tuple]:
    return list(Patient.objects.order_by("mrn").values_list("mrn", "family_name", "birth_date"))


def test_seed_demo_is_deterministic(settings):
    settings.DEBUG = True

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        call_command("seed_demo", patients=8)
        first = seeded_people()
        raise Rollback
    assert not Patient.objects.exists()
    call_command("seed_demo", patients=8)
    assert seeded_people() == first
    assert {mrn for mrn, _, _ in first} >= {"RI0000001", "LA0000001"}


def test_seed_demo_runs_once(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=8)
    before = seeded_people()
    call_command("seed_demo", patients=50)
    assert seeded_people() == before
    assert Patient.history.count() == 8
