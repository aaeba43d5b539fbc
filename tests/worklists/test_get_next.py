"""Get next: priority order, own work first, one patient's items together, idle claims expire."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from carehub.errors import NotAllowed
from tests.worklists.factories import WorkItemFactory
from worklists.models import ItemKind, RiskTier, WorkItem
from worklists.services import assign_items, close_item, get_next, release_idle_claims

pytestmark = pytest.mark.django_db


def drain(agent):
    order = []
    while (item := get_next(agent)) is not None:
        order.append(item.pk)
        close_item(item, actor=agent, resolution="Reached the patient")
    return order


def test_priority_is_risk_tier_then_due_date_then_measure_weight(org_a, working_agent):
    today = timezone.localdate()
    day = dt.timedelta(days=1)
    low_overdue_heavy = WorkItemFactory(
        organization=org_a, tier=RiskTier.LOW, due_date=today - 9 * day, measure_weight=3
    )
    high_later = WorkItemFactory(organization=org_a, tier=RiskTier.HIGH, due_date=today + 5 * day)
    high_soon_light = WorkItemFactory(
        organization=org_a, tier=RiskTier.HIGH, due_date=today + day, measure_weight=1
    )
    high_soon_heavy = WorkItemFactory(
        organization=org_a, tier=RiskTier.HIGH, due_date=today + day, measure_weight=3
    )
    rising_overdue = WorkItemFactory(
        organization=org_a, tier=RiskTier.RISING, due_date=today - 2 * day, measure_weight=3
    )
    assert drain(working_agent) == [
        high_soon_heavy.pk,
        high_soon_light.pk,
        high_later.pk,
        rising_overdue.pk,
        low_overdue_heavy.pk,
    ]


def test_the_agents_own_claimed_work_comes_before_new_work(org_a, working_agent, supervisor_a):
    mine = WorkItemFactory(organization=org_a, tier=RiskTier.LOW)
    WorkItemFactory(organization=org_a, tier=RiskTier.HIGH)
    assign_items([mine.pk], to=working_agent, actor=supervisor_a, reason="Spanish speaker")
    assert get_next(working_agent).pk == mine.pk


def test_claiming_an_item_takes_the_patients_other_open_items_too(org_a, working_agent):
    first = WorkItemFactory(organization=org_a, tier=RiskTier.HIGH)
    sibling = WorkItemFactory(
        organization=org_a, patient=first.patient, kind=ItemKind.CONFIRM_CLOSURE
    )
    other_patient = WorkItemFactory(organization=org_a)
    assert get_next(working_agent).pk == first.pk
    sibling.refresh_from_db()
    other_patient.refresh_from_db()
    assert sibling.owner == working_agent and other_patient.owner is None


def test_work_not_yet_due_to_start_is_not_handed_out(org_a, working_agent):
    WorkItemFactory(
        organization=org_a,
        kind=ItemKind.CONFIRM_COMPLETION,
        not_before=timezone.localdate() + dt.timedelta(days=3),
    )
    assert get_next(working_agent) is None


def test_an_agent_in_no_team_is_told_so(org_a, agent_a):
    WorkItemFactory(organization=org_a)
    with pytest.raises(NotAllowed, match="no team"):
        get_next(agent_a)


def test_another_organizations_queue_is_never_handed_out(org_a, org_b, working_agent_b):
    WorkItemFactory(organization=org_a, tier=RiskTier.HIGH)
    assert get_next(working_agent_b) is None


def test_a_claim_idle_for_30_minutes_returns_to_the_queue(org_a, working_agent, system_user):
    start = dt.datetime(2026, 3, 3, 14, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        item = WorkItemFactory(organization=org_a)
        assert get_next(working_agent).pk == item.pk
    with time_machine.travel(start + dt.timedelta(minutes=29), tick=False):
        assert release_idle_claims() == 0
    with time_machine.travel(start + dt.timedelta(minutes=31), tick=False):
        assert release_idle_claims() == 1
    item.refresh_from_db()
    assert (item.owner, item.assignment, item.claimed_at) == (None, "", None)
    last = item.history.order_by("-history_id").first()
    assert last.history_user == system_user
    assert last.history_change_reason.startswith("Claim idle for 30 minutes")


def test_a_supervisors_assignment_does_not_expire(org_a, working_agent, supervisor_a):
    start = dt.datetime(2026, 3, 3, 14, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        item = WorkItemFactory(organization=org_a)
        assign_items([item.pk], to=working_agent, actor=supervisor_a, reason="Knows the family")
    with time_machine.travel(start + dt.timedelta(hours=3), tick=False):
        assert release_idle_claims() == 0
    assert WorkItem.objects.get(pk=item.pk).owner == working_agent


def test_the_release_runs_every_five_minutes_through_django_q():
    from django_q.models import Schedule

    from worklists.schedule import RELEASE_NAME, ensure_schedules

    ensure_schedules()
    schedule = Schedule.objects.get(name=RELEASE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "worklists.tasks.release_idle_claims",
        Schedule.MINUTES,
        5,
    )


def test_the_fast_queue_lookup_agrees_with_guardian(
    org_a, org_b, working_agent, agent_b, system_user
):
    from carehub.services import revoke_organization
    from worklists.queues import workable_queue_ids, workable_queues

    expected = sorted(workable_queues(working_agent).values_list("pk", flat=True))
    assert sorted(workable_queue_ids(working_agent)) == expected and len(expected) == 3
    assert workable_queue_ids(agent_b) == []
    revoke_organization(working_agent, org_a, actor=system_user, reason="left the client")
    assert workable_queue_ids(working_agent) == []
