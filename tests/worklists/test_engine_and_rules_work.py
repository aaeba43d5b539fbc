"""Engine results and the 14-day rule move the work through carehub.events, in their own
transaction; a past year's evaluation leaves today's worklists alone."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from gaps.care_gaps import CareGap, GapState
from gaps.models import EvaluationRun, MeasureResult
from gaps.sync import flag_stale_completions, sync_gaps_from_results
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory, measure
from worklists.models import ItemKind, WorkItem
from worklists.services import reconcile_gap_items

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR)]


def result(patient, year, status, system_user):
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    cms = measure("CMS130", "MP2026" if year >= 2026 else "MP2025")
    run = EvaluationRun.objects.create(
        organization=patient.organization, actor=system_user, period_start=start, period_end=end
    )
    MeasureResult.objects.create(
        organization=patient.organization,
        patient=patient,
        measure=cms,
        period_start=start,
        period_end=end,
        ip=True,
        denom=True,
        numer=status == MeasureResult.Status.CLOSED,
        status=status,
        gap_status="open-gap" if status == "open" else "closed-gap",
        evaluation_run=run,
    )
    return cms, start, end


def test_an_engine_opened_gap_of_this_year_gets_review_work(patient_a, system_user):
    cms, start, end = result(patient_a, 2026, MeasureResult.Status.OPEN, system_user)
    sync_gaps_from_results(patient_a.organization, cms, start, end, actor=system_user)
    gap = CareGap.objects.get(patient=patient_a)
    assert WorkItem.objects.get(gap=gap).kind == ItemKind.REVIEW_GAP


def test_evaluating_last_year_creates_no_agent_work(patient_a, system_user):
    cms, start, end = result(patient_a, 2025, MeasureResult.Status.OPEN, system_user)
    sync_gaps_from_results(patient_a.organization, cms, start, end, actor=system_user)
    assert CareGap.objects.filter(patient=patient_a, period_end=end).exists()
    assert not WorkItem.objects.exists()


def test_an_engine_closure_cancels_the_gaps_open_work(patient_a, system_user):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    reconcile_gap_items([gap.pk], actor=system_user)
    cms, start, end = result(patient_a, 2026, MeasureResult.Status.CLOSED, system_user)
    sync_gaps_from_results(patient_a.organization, cms, start, end, actor=system_user)
    item = WorkItem.objects.get(gap=gap)
    assert (item.state, item.resolution) == (
        "cancelled",
        "Engine results: the gap's work follows its new state",
    )


def test_the_14_day_rule_hands_the_gap_to_the_coordinators(patient_a, system_user):
    today = timezone.localdate()
    gap = CareGapFactory(
        patient=patient_a,
        state=GapState.COMPLETED,
        completed_on=today - dt.timedelta(days=15),
    )
    reconcile_gap_items([gap.pk], actor=system_user)
    assert flag_stale_completions(actor=system_user) == 1
    open_item = WorkItem.objects.get(gap=gap, state="open")
    assert open_item.kind == ItemKind.COORDINATOR_REVIEW
    assert open_item.queue.name == "Coordinator review and escalations"
    assert "14 days" in open_item.reason
    assert WorkItem.objects.get(gap=gap, kind=ItemKind.CONFIRM_CLOSURE).state == "cancelled"


def test_work_of_an_ended_period_that_can_no_longer_close_is_cancelled_with_the_reason(
    patient_a, system_user, supervisor_a
):
    from worklists.hygiene import open_work_for_period, retire_ended_period_work

    last_year = {
        "period_start": dt.date(2025, 1, 1),
        "period_end": dt.date(2025, 12, 31),
        "due_date": dt.date(2025, 12, 31),
    }
    with time_machine.travel(dt.datetime(2025, 10, 1, 12, tzinfo=dt.UTC), tick=False):
        stale = CareGapFactory(patient=patient_a, **last_year)
        waiting_for_a_result = CareGapFactory(
            patient=patient_a,
            measure_code="CMS122",
            state=GapState.COMPLETED,
            completed_on=dt.date(2025, 9, 20),
            **last_year,
        )
        reconcile_gap_items([stale.pk, waiting_for_a_result.pk], actor=system_user)
    assert retire_ended_period_work(actor=system_user) == 1
    item = WorkItem.objects.get(gap=stale)
    assert (item.state, item.resolution) == (
        "cancelled",
        "Measurement period ended 2025-12-31: the gap can no longer close",
    )
    assert WorkItem.objects.get(gap=waiting_for_a_result).state == "open"
    # Asked for on purpose after the period ended: kept by the next night's run.
    open_work_for_period(
        patient_a.organization,
        period_end=dt.date(2025, 12, 31),
        actor=supervisor_a,
        reason="Payer takes supplemental data until March",
    )
    assert retire_ended_period_work(actor=system_user) == 0
    assert WorkItem.objects.filter(gap=stale, state="open").count() == 1
