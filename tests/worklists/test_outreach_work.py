"""Outreach's follow-ups become work items in outreach's own transaction (carehub.events), and
finishing the item finishes the follow-up."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from gaps.care_gaps import GapState
from outreach.models import FollowUp, Outcome
from outreach.services.calls import log_call
from outreach.services.inbound import record_voicemail
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from worklists.models import ItemKind, WorkItem
from worklists.services import complete_item, reconcile_gap_items

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR)]


def test_a_voicemail_becomes_a_callback_item_and_calling_back_closes_both(patient_a, working_agent):
    follow_up = record_voicemail(patient_a, actor=working_agent, note="Asks about the letter")
    item = WorkItem.objects.get(follow_up_ref=follow_up.pk)
    assert (item.kind, item.queue.name, item.state) == (
        ItemKind.CALL_BACK,
        "Outreach and scheduling",
        "open",
    )
    assert item.reason == "Call back (inbound message or voicemail): Asks about the letter"
    assert item.due_date == timezone.localdate(follow_up.due_at)

    complete_item(item, actor=working_agent, resolution="Called back; questions answered")
    follow_up.refresh_from_db()
    assert follow_up.done_by == working_agent and follow_up.lag_seconds is not None
    assert WorkItem.objects.get(pk=item.pk).state == "done"


def test_a_rolled_back_follow_up_leaves_no_work_item(patient_a, working_agent):
    with pytest.raises(RuntimeError), transaction.atomic():
        record_voicemail(patient_a, actor=working_agent)
        raise RuntimeError("the outreach transaction fails after the follow-up")
    assert not FollowUp.objects.exists()
    assert not WorkItem.objects.exists()


def test_a_logged_call_moves_the_outreach_items_due_date(patient_a, working_agent):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    reconcile_gap_items([gap.pk], actor=working_agent)
    next_try = timezone.localdate() + dt.timedelta(days=4)
    log_call(
        patient_a,
        actor=working_agent,
        outcome=Outcome.NO_ANSWER,
        gaps=[gap],
        next_step_due=next_try,
    )
    assert WorkItem.objects.get(gap=gap, state="open").due_date == next_try
