"""Everything one user did and saw between two dates, for auditors of their organizations."""

import csv
import datetime as dt
import io

import pytest
import time_machine
from django.urls import reverse

from audit.models import AccessLog
from gaps import workflow
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory

pytestmark = pytest.mark.django_db


def activity_url(user, **params):
    from django.utils.http import urlencode

    url = reverse("admin:audit_useractivity_activity", args=[user.pk])
    return url + ("?" + urlencode(params) if params else "")


@pytest.fixture
def busy_agent(client, agent_a, patient_a, patient_b, agent_b, supervisor_a):
    """agent_a reads and works org A on two days; agent_b works org B; a supervisor too."""
    gap = CareGapFactory(patient=patient_a)
    gap_b = CareGapFactory(patient=patient_b)
    with time_machine.travel(IN_MEASUREMENT_YEAR, tick=False) as clock:
        client.force_login(agent_a)
        client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
        clock.shift(dt.timedelta(minutes=1))
        gap = workflow.start_review(gap, actor=agent_a)
        workflow.start_review(gap_b, actor=agent_b)
        clock.shift(dt.timedelta(days=3))
        client.force_login(agent_a)
        gap = workflow.validate_gap(gap, actor=agent_a, reason="Nothing on file")
        workflow.flag_for_review(gap, actor=supervisor_a, reason="Second look")
    client.logout()
    return agent_a


def test_activity_lists_the_users_changes_and_reads_in_order(client, busy_agent, auditor_a):
    client.force_login(auditor_a)
    events = [
        e
        for e in client.get(activity_url(busy_agent)).context["events"]
        if e.model in ("patients.patient", "gaps.caregap")  # worklists may add their items
    ]
    summary = [(e.kind, e.model, e.action) for e in events]
    assert summary == [
        ("read", "patients.patient", "view"),
        ("change", "gaps.caregap", "changed"),
        ("change", "gaps.caregap", "changed"),
    ]
    assert {e.actor for e in events} == {busy_agent.username}
    assert ("state", "in_review", "validated") in events[2].changes
    assert events[2].reason == "Nothing on file"


def test_activity_between_two_dates(client, busy_agent, auditor_a):
    client.force_login(auditor_a)
    first_day = IN_MEASUREMENT_YEAR.date().isoformat()
    events = client.get(activity_url(busy_agent, start=first_day, end=first_day)).context["events"]
    assert {e.at.date() for e in events} == {IN_MEASUREMENT_YEAR.date()}
    assert [(e.kind, e.model) for e in events if e.model != "worklists.workitem"] == [
        ("read", "patients.patient"),
        ("change", "gaps.caregap"),
    ]


def test_activity_exports_as_csv_and_the_view_is_logged(client, busy_agent, auditor_a, patient_a):
    client.force_login(auditor_a)
    response = client.get(activity_url(busy_agent, format="csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["kind"] for r in rows if r["record"].startswith(("Opened", "Care gap"))] == [
        "read",
        "change",
        "change",
    ]
    logged = AccessLog.objects.get(user=auditor_a, action="export")
    assert logged.patient_ids == [patient_a.pk]


def test_an_auditor_sees_nothing_of_other_organizations(client, busy_agent, agent_b, auditor_a):
    client.force_login(auditor_a)
    assert client.get(activity_url(agent_b)).status_code == 404
    users = client.get(reverse("admin:audit_useractivity_changelist")).context["cl"].result_list
    assert busy_agent in list(users) and agent_b not in list(users)


def test_org_b_auditor_cannot_read_org_a_agents_activity(client, busy_agent, persona, org_b):
    client.force_login(persona("auditor", org_b))
    assert client.get(activity_url(busy_agent)).status_code == 404


@pytest.mark.parametrize("who", ["agent_a", "supervisor_a", "coordinator_a", "administrator_a"])
def test_only_auditors_read_activity(request, client, who, agent_a):
    client.force_login(request.getfixturevalue(who))
    assert client.get(activity_url(agent_a)).status_code == 403
