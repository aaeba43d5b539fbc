"""Every rate of the dashboard against values computed by hand on a fixed dataset.

The day: Tuesday 2026-06-16 (measurement year 2026). Five gaps of org A are worked through the
real workflow services; attempts, appointments and follow-ups are written as outreach records
them; the snapshot of that day is taken by the real nightly code.
"""

import datetime as dt

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from gaps import workflow
from gaps.care_gaps import GapEvidence, GapState
from gaps.models import EvaluationRun, MeasureResult
from metrics import snapshots
from metrics.models import FollowUpMonth, GapStateDay, TransitionDay, TransitionMonth
from metrics.selectors import Filters, build_dashboard, percentile
from outreach.models import Appointment, FollowUp, OutreachAttempt
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory, measure
from tests.patients.factories import PatientFactory, SiteFactory

pytestmark = pytest.mark.django_db
DAY = IN_MEASUREMENT_YEAR.date()  # 2026-06-16


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), tzinfo=dt.UTC)


@pytest.fixture
def dataset(org_a, supervisor_a, agent_a, system_user):
    site = SiteFactory(organization=org_a)
    patients = [PatientFactory(organization=org_a, attributed_site=site) for _ in range(5)]
    with time_machine.travel(at(9), tick=False):
        gaps = [
            workflow.open_gap(p, measure_code="CMS130", actor=supervisor_a, reason="chart")
            for p in patients
        ]
        g1, g2, g3, g4, g5 = (workflow.start_review(g, actor=agent_a) for g in gaps)
        g1, g2, g3, g5 = (workflow.validate_gap(g, actor=agent_a) for g in (g1, g2, g3, g5))
        workflow.mark_not_a_gap(g4, actor=agent_a, not_a_gap_reason="excluded", reason="hospice")
        g1, g2, g3 = (
            workflow.record_outreach_started(g, actor=agent_a, channel="phone")
            for g in (g1, g2, g3)
        )
        g1, g2 = (workflow.mark_scheduled(g, actor=agent_a, appointment_on=DAY) for g in (g1, g2))
        workflow.mark_declined(g3, actor=agent_a, reason="not interested")
        g1 = workflow.mark_completed(g1, actor=agent_a, completed_on=DAY)
        workflow.close_gap(
            g1,
            actor=agent_a,
            service_date=DAY,
            evidence_kind=GapEvidence.Kind.LAB_RESULT,
            reference="ACC-9",
        )
        workflow.reopen_after_no_show(g2, actor=agent_a)

    def attempt(n, *, actor, automated, channel, step, outcome, when):
        return OutreachAttempt.objects.create(
            organization=org_a,
            patient=patients[n % 5],
            step=step,
            window=f"w{n}",
            channel=channel,
            status="logged" if not automated else "sent",
            outcome=outcome,
            automated=automated,
            actor=actor,
            planned_at=when,
            not_before=when,
            attempted_at=when,
        )

    # The agent: three calls in two clock hours (09:xx, 11:xx); automation: five messages.
    attempt(
        1,
        actor=agent_a,
        automated=False,
        channel="phone",
        step="agent_call",
        outcome="reached_scheduled",
        when=at(9, 10),
    )
    attempt(
        2,
        actor=agent_a,
        automated=False,
        channel="phone",
        step="agent_call",
        outcome="no_answer",
        when=at(9, 40),
    )
    attempt(
        3,
        actor=agent_a,
        automated=False,
        channel="phone",
        step="agent_call",
        outcome="reached_declined",
        when=at(11, 5),
    )
    attempt(
        4,
        actor=system_user,
        automated=True,
        channel="sms",
        step="gap_first",
        outcome="delivered",
        when=at(14),
    )
    attempt(
        5,
        actor=system_user,
        automated=True,
        channel="sms",
        step="gap_first",
        outcome="delivered",
        when=at(14, 1),
    )
    attempt(
        6,
        actor=system_user,
        automated=True,
        channel="sms",
        step="dormant",
        outcome="reached_scheduled",
        when=at(15),
    )
    attempt(
        7,
        actor=system_user,
        automated=True,
        channel="sms",
        step="dormant",
        outcome="delivered",
        when=at(15, 1),
    )
    # An attempt of another day is not counted.
    attempt(
        8,
        actor=agent_a,
        automated=False,
        channel="phone",
        step="agent_call",
        outcome="reached_scheduled",
        when=at(9) - dt.timedelta(days=1),
    )

    for n, status in enumerate(["completed", "completed", "completed", "no_show", "cancelled"]):
        Appointment.objects.create(
            organization=org_a,
            patient=patients[n],
            site=site,
            starts_at=at(10 + n),
            status=status,
            booked_by=agent_a,
            booked_at=at(8),
        )

    def follow_up(kind, *, due, done=None, received=None):
        received = received or at(8)
        return FollowUp.objects.create(
            organization=org_a,
            patient=patients[0],
            kind=kind,
            received_at=received,
            due_at=due,
            done_at=done,
            done_by=agent_a if done else None,
            lag_seconds=int((done - received).total_seconds()) if done else None,
        )

    # Due today: two done on time, one late (tomorrow), one not done.
    follow_up("call_unconfirmed", due=at(12), done=at(11))
    follow_up("no_show_call", due=at(12), done=at(12))
    follow_up("call_unconfirmed", due=at(12), done=at(13) + dt.timedelta(days=1))
    follow_up("no_show_call", due=at(12))
    # Callbacks done today, received 1, 2, 3 and 10 hours before (due tomorrow).
    for hours in (1, 2, 3, 10):
        follow_up(
            "callback",
            received=at(20) - dt.timedelta(hours=hours),
            due=at(20) + dt.timedelta(days=1),
            done=at(20),
        )

    # Quality: ten CMS130 patients in the denominator (one more excluded), six met; one open
    # scheduled gap whose result is not met.
    run = EvaluationRun.objects.create(
        organization=org_a,
        actor=system_user,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
        status="succeeded",
    )
    cms130 = measure("CMS130")
    results = []
    for n in range(11):
        results.append(
            MeasureResult.objects.create(
                organization=org_a,
                patient=PatientFactory(organization=org_a),
                measure=cms130,
                period_start=dt.date(2026, 1, 1),
                period_end=dt.date(2026, 12, 31),
                ip=True,
                denom=True,
                denex=n == 10,
                numer=n < 6,
                status="denex" if n == 10 else ("numer" if n < 6 else "denom"),
                gap_status="closed-gap" if n < 6 else "open-gap",
                evaluation_run=run,
            )
        )
    CareGapFactory(
        patient=results[7].patient,  # its result: same patient, measure and period
        state=GapState.SCHEDULED,
        next_step="attend_visit",
        next_step_due=DAY,
    )
    return {"org": org_a, "agent": agent_a}


def board_for(org, **kwargs):
    return build_dashboard(
        Filters(organization_ids=[org.pk], start=DAY.replace(day=1), end=DAY, **kwargs)
    )


def test_each_rate_matches_the_hand_computed_value(dataset):
    snapshots.take_snapshot(DAY, events_day=DAY)
    board = board_for(dataset["org"])
    rates = {row["rate"].key: row["ratio"] for row in board.rates}
    expected = {
        # into outreach: g1, g2, g3 and g2 again after its no-show = 4; into validated: 4
        "outreach_completion": (4, 4),
        # reached: two "reached and scheduled" + one "reached and declined" of 7 attempts
        "contact": (3, 7),
        # into scheduled: g1, g2 = 2; into outreach 4
        "scheduled_appointment": (2, 4),
        # completed -> closed: g1 = 1 of 1 completed
        "closure_confirmation": (1, 1),
        # one no-show of four completed-or-no-show (the cancellation left out)
        "no_show": (1, 4),
        # re-engagement: one reached and scheduled of two
        "recall_conversion": (1, 2),
        # due today: two done by their due time of four
        "follow_up_completion": (2, 4),
    }
    assert {k: (r.numerator, r.denominator) for k, r in rates.items()} == expected
    assert rates["contact"].percent == "42.9%"

    # callbacks: lags 1, 2, 3, 10 hours -> median 2.5 h; p90 nearest rank = rank 4 = 10 h
    assert board.callback["count"] == 4
    assert board.callback["median_hours"] == pytest.approx(2.5)
    assert board.callback["p90_hours"] == pytest.approx(10.0)

    (agent,) = board.productivity
    assert agent["agent"] == dataset["agent"].username
    assert (agent["attempts"], agent["hours"], agent["per_hour"], agent["closures"]) == (
        3,
        2,
        1.5,
        1,
    )

    funnel = {step["state"]: step["count"] for step in board.funnel}
    assert funnel == {
        "identified": 5,
        "validated": 4,
        "outreach": 4,
        "scheduled": 2,
        "completed": 1,
        "closed": 1,
    }
    exits = {(e["from"], e["to"]): e["gaps"] for e in board.exits}
    assert exits == {
        ("in_review", "not_a_gap"): 1,
        ("outreach", "declined"): 1,
        ("scheduled", "outreach"): 1,
    }

    (quality,) = board.quality
    assert (quality["numerator"], quality["denominator"], quality["scheduled"]) == (6, 10, 1)
    assert quality["now"].percent == "60.0%"
    assert quality["projected"].percent == "70.0%"


def test_the_standing_gap_counts_and_the_trend(dataset):
    snapshots.take_snapshot(DAY, events_day=DAY)
    states = dict(GapStateDay.objects.filter(day=DAY).values_list("state").annotate(n=Sum("gaps")))
    assert states == {
        "closed": 1,
        "outreach": 1,
        "declined": 1,
        "not_a_gap": 1,
        "validated": 1,
        "scheduled": 1,
    }
    board = board_for(dataset["org"])
    assert [m.isoformat() for m in board.months] == [DAY.replace(day=1).isoformat()]
    assert board.trend["no_show"] == [0.25]


def test_filters_by_agent_and_measure(dataset, supervisor_a):
    snapshots.take_snapshot(DAY, events_day=DAY)
    by_supervisor = board_for(dataset["org"], agent_ids=[supervisor_a.pk])
    funnel = {step["state"]: step["count"] for step in by_supervisor.funnel}
    assert funnel["identified"] == 5 and funnel["validated"] == 0
    other_measure = board_for(dataset["org"], measure="CMS125")
    assert all(step["count"] == 0 for step in other_measure.funnel)


def test_a_rerun_of_the_same_day_replaces_its_rows(dataset):
    snapshots.snapshot_events(DAY)
    first = TransitionDay.objects.filter(day=DAY).count()
    month = list(TransitionMonth.objects.values_list("from_state", "to_state", "gaps"))
    snapshots.snapshot_events(DAY)
    assert TransitionDay.objects.filter(day=DAY).count() == first > 0
    assert sorted(TransitionMonth.objects.values_list("from_state", "to_state", "gaps")) == sorted(
        month
    )


def test_months_add_up_their_days(dataset, agent_a):
    snapshots.snapshot_events(DAY)
    # the same counts again on another day of the month: the month doubles
    for row in TransitionDay.objects.filter(day=DAY):
        TransitionDay.objects.create(
            day=DAY - dt.timedelta(days=1),
            organization_id=row.organization_id,
            measure_code=row.measure_code,
            actor_id=row.actor_id,
            from_state=row.from_state,
            to_state=row.to_state,
            gaps=row.gaps,
        )
    snapshots.roll_up_month(DAY)
    day_total = TransitionDay.objects.filter(day=DAY).aggregate(n=Sum("gaps"))["n"]
    month_total = TransitionMonth.objects.filter(day=DAY.replace(day=1)).aggregate(n=Sum("gaps"))
    assert month_total["n"] == 2 * day_total
    (callbacks,) = FollowUpMonth.objects.filter(kind="callback")
    assert sum(callbacks.lag_histogram.values()) == 4


def test_percentile_is_nearest_rank():
    assert percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9) == 90
    assert percentile([5], 0.9) == 5
    assert percentile([], 0.9) is None


def test_work_aging_buckets(org_a, agent_a):
    from worklists.models import Queue, WorkItem

    queue = Queue.objects.create(organization=org_a, name="Agents", role="Agent", kinds=[])
    patient = PatientFactory(organization=org_a)
    now = timezone.now()
    for age, state in [
        (1, "open"),
        (2, "open"),
        (5, "open"),
        (10, "open"),
        (20, "open"),
        (45, "open"),
        (45, "done"),
    ]:
        WorkItem.objects.create(
            organization=org_a,
            queue=queue,
            kind="call_back",
            patient=patient,
            state=state,
            reason="test",
            due_date=now.date(),
            sla_due_at=now,
            created_at=now - dt.timedelta(days=age, hours=1),
        )
    snapshots.take_snapshot(now.date(), events_day=now.date() - dt.timedelta(days=1))
    board = build_dashboard(
        Filters(organization_ids=[org_a.pk], start=now.date().replace(day=1), end=now.date())
    )
    assert {b["bucket"]: b["items"] for b in board.aging} == {
        "0-2": 2,
        "3-7": 1,
        "8-14": 1,
        "15-30": 1,
        "30+": 1,
    }
