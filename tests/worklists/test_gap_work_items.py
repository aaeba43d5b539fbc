"""Gap transitions open and close the work they cause, in the same transaction."""

import datetime as dt

import pytest
from django.utils import timezone

from carehub import events
from carehub.errors import DomainError
from gaps import workflow
from gaps.care_gaps import GapState
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from worklists.models import ItemKind, WorkItem
from worklists.services import get_next, reconcile_gap_items

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR)]


def open_items(gap):
    return list(WorkItem.objects.filter(gap=gap, state="open").values_list("kind", flat=True))


def test_a_gap_opened_by_staff_gets_a_review_item_in_the_records_review_queue(
    patient_a, supervisor_a
):
    gap = workflow.open_gap(patient_a, measure_code="CMS130", actor=supervisor_a, reason="FIT due")
    item = WorkItem.objects.get(gap=gap)
    assert (item.kind, item.state, item.queue.name) == (
        ItemKind.REVIEW_GAP,
        "open",
        "Records review",
    )
    assert item.due_date == gap.next_step_due and item.owner is None
    assert item.history.get().history_user == supervisor_a


def test_each_step_closes_the_finished_item_and_opens_the_next_for_the_same_agent(
    patient_a, working_agent
):
    gap = CareGapFactory(patient=patient_a)
    workflow.start_review(gap, actor=working_agent)
    assert open_items(gap) == [ItemKind.REVIEW_GAP]
    claimed = get_next(working_agent)
    assert claimed.gap_id == gap.pk

    workflow.validate_gap(gap, actor=working_agent, reason="No colonoscopy anywhere")
    review = WorkItem.objects.get(gap=gap, kind=ItemKind.REVIEW_GAP)
    assert (review.state, review.resolution) == ("done", "No colonoscopy anywhere")
    call = WorkItem.objects.get(gap=gap, state="open")
    assert call.kind == ItemKind.OUTREACH_CALL
    assert call.owner == working_agent, "the agent who reviewed carries the patient on"


def test_booking_a_visit_opens_completion_work_not_handed_out_before_the_visit(
    patient_a, working_agent
):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    today = timezone.localdate()
    workflow.mark_scheduled(gap, actor=working_agent, appointment_on=today + dt.timedelta(days=5))
    confirm = WorkItem.objects.get(gap=gap, state="open")
    assert confirm.kind == ItemKind.CONFIRM_COMPLETION
    assert confirm.not_before == today + dt.timedelta(days=5), "not handed out before the visit"


def test_a_no_show_opens_recovery_and_closing_the_gap_finishes_all_its_work(
    patient_a, working_agent
):
    today = timezone.localdate()
    gap = CareGapFactory(patient=patient_a, state=GapState.SCHEDULED, scheduled_for=today)
    reconcile_gap_items([gap.pk], actor=working_agent)
    workflow.reopen_after_no_show(gap, actor=working_agent)
    assert open_items(gap) == [ItemKind.NO_SHOW_RECOVERY]
    recovery = WorkItem.objects.get(gap=gap, state="open")
    assert recovery.sla_due_at - recovery.created_at == dt.timedelta(hours=24)

    workflow.mark_declined(gap, actor=working_agent, reason="Does not want a colonoscopy")
    assert open_items(gap) == []
    assert WorkItem.objects.get(pk=recovery.pk).state == "done"


def test_flagging_for_review_sends_the_reason_to_the_coordinators_queue(patient_a, working_agent):
    gap = CareGapFactory(patient=patient_a, state=GapState.VALIDATED)
    workflow.flag_for_review(gap, actor=working_agent, reason="Patient reports chest pain")
    item = WorkItem.objects.get(gap=gap, state="open")
    assert item.kind == ItemKind.COORDINATOR_REVIEW
    assert item.queue.name == "Coordinator review and escalations"
    assert item.reason == "Patient reports chest pain"


def test_a_failing_subscriber_rolls_back_the_transition(patient_a, working_agent):
    gap = CareGapFactory(patient=patient_a, state=GapState.IN_REVIEW)

    def refuse(**_):
        raise DomainError("worklist refused")

    events.subscribe(events.GAP_TRANSITIONED, refuse)
    try:
        with pytest.raises(DomainError):
            workflow.validate_gap(gap, actor=working_agent)
    finally:
        events.unsubscribe(events.GAP_TRANSITIONED, refuse)
    gap.refresh_from_db()
    assert gap.state == GapState.IN_REVIEW
    assert not WorkItem.objects.filter(gap=gap).exists()


def test_the_engine_opening_a_past_periods_gap_creates_no_work_unless_asked(
    patient_a, system_user, supervisor_a
):
    last_year = timezone.localdate().year - 1
    gap = CareGapFactory(
        patient=patient_a,
        period_start=dt.date(last_year, 1, 1),
        period_end=dt.date(last_year, 12, 31),
        due_date=dt.date(last_year, 12, 31),
    )
    assert reconcile_gap_items([gap.pk], actor=system_user) == (0, 0)
    assert not WorkItem.objects.filter(gap=gap).exists()

    from worklists.hygiene import open_work_for_period

    opened = open_work_for_period(
        patient_a.organization,
        period_end=dt.date(last_year, 12, 31),
        actor=supervisor_a,
        reason="Payer accepts supplemental data until March",
    )
    assert opened == 1 and open_items(gap) == [ItemKind.REVIEW_GAP]


def test_replaying_an_event_opens_nothing_twice(patient_a, system_user):
    gap = CareGapFactory(patient=patient_a)
    assert reconcile_gap_items([gap.pk], actor=system_user) == (1, 0)
    assert reconcile_gap_items([gap.pk], actor=system_user) == (0, 0)
    assert len(open_items(gap)) == 1
