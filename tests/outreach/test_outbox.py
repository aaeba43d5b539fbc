"""The outbox: planned once, sent once, blocked with reasons, unknown goes to a person."""

import datetime as dt

import pytest
import time_machine

from consent.models import BlockedSend, Consent
from consent.services import revoke_consent
from gaps.care_gaps import GapState
from outreach.models import AttemptStatus, FollowUp, OutboundMessage, Outcome, Step
from outreach.services import outbox
from tests.outreach.conftest import IN_MEASUREMENT_YEAR, gap_for

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=False)]


def plan(patient, gaps, actor, channel="sms"):
    return outbox.plan_attempt(
        patient, step=Step.GAP_FIRST, window="2026", channel=channel, actor=actor, gaps=gaps
    )


def test_planning_the_same_contact_twice_keeps_one_row(templates, patient_factory, system_user):
    patient = patient_factory()
    gap = gap_for(patient, GapState.OUTREACH)
    first, created = plan(patient, [gap], system_user)
    again, created_again = plan(patient, [gap], system_user)
    assert created and not created_again
    assert first.pk == again.pk
    assert patient.outreach_attempts.count() == 1


def test_a_retried_task_never_sends_twice(templates, patient_factory, system_user):
    patient = patient_factory()
    gap = gap_for(patient, GapState.OUTREACH)
    attempt, _ = plan(patient, [gap], system_user)
    assert outbox.send_attempt(attempt.pk) == "sent"
    assert outbox.send_attempt(attempt.pk) == "already sent"
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SENT
    assert "due for a health screening" in attempt.rendered_text
    assert patient.given_name in attempt.rendered_text
    message = OutboundMessage.objects.get(attempt=attempt)
    assert message.to_address == patient.phone
    assert message.provider_message_id == attempt.provider_message_id
    assert OutboundMessage.objects.count() == 1
    gap.refresh_from_db()
    assert gap.next_step_due == dt.date(2026, 6, 30)  # the second attempt, 14 days on


def test_a_revocation_after_planning_blocks_the_send_with_reasons(
    templates, patient_factory, system_user, agent_a
):
    patient = patient_factory()
    gap = gap_for(patient, GapState.OUTREACH)
    attempt, _ = plan(patient, [gap], system_user)
    revoke_consent(
        patient, kind=Consent.Kind.SMS_TCPA, method="verbal_recorded_call", actor=agent_a
    )
    assert outbox.send_attempt(attempt.pk) == "blocked"
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.BLOCKED
    assert attempt.outcome == Outcome.BLOCKED_BY_POLICY
    assert attempt.blocked_reasons == ["no_tcpa_consent"]
    blocked = BlockedSend.objects.get(patient=patient)
    assert blocked.reasons == ["no_tcpa_consent"]
    assert blocked.purpose == f"outreach.attempt:{attempt.pk}"
    assert not OutboundMessage.objects.exists()
    gap.refresh_from_db()
    assert gap.state == GapState.NEEDS_REVIEW
    assert "no_tcpa_consent" in gap.history.latest().history_change_reason


def test_quiet_hours_defer_the_send_instead_of_blocking(templates, patient_factory, system_user):
    patient = patient_factory()
    gap = gap_for(patient, GapState.OUTREACH)
    with time_machine.travel(dt.datetime(2026, 6, 17, 3, 0, tzinfo=dt.UTC), tick=False):
        attempt, _ = plan(patient, [gap], system_user)  # 23:00 in Boston
        assert outbox.send_attempt(attempt.pk) == "deferred"
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PLANNED
    assert attempt.not_before == dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.UTC)  # 08:00 Boston
    assert not BlockedSend.objects.exists()
    with time_machine.travel(attempt.not_before, tick=False):
        assert outbox.send_attempt(attempt.pk) == "sent"


def test_a_contact_no_longer_needed_is_cancelled(templates, patient_factory, system_user):
    patient = patient_factory()
    gap = gap_for(patient, GapState.OUTREACH)
    attempt, _ = plan(patient, [gap], system_user)
    gap.state = GapState.CLOSED
    gap.next_step, gap.next_step_due = "", None
    gap.save()
    assert outbox.send_attempt(attempt.pk) == "cancelled"
    assert not OutboundMessage.objects.exists()


def test_a_send_stuck_past_the_timeout_becomes_unknown_for_a_person(
    templates, patient_factory, system_user, settings
):
    patient = patient_factory()
    attempt, _ = plan(patient, [gap_for(patient, GapState.OUTREACH)], system_user)
    attempt.status = AttemptStatus.SENDING
    attempt.claimed_at = IN_MEASUREMENT_YEAR - dt.timedelta(hours=1)
    attempt.save()
    settings.CAREHUB_OUTREACH_SENDING_TIMEOUT_SECONDS = 600
    assert outbox.expire_stale_sends() == 1
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.UNKNOWN
    assert FollowUp.objects.get(attempt=attempt).kind == FollowUp.Kind.UNKNOWN_SEND
    assert outbox.send_attempt(attempt.pk) == "already unknown"  # never resent automatically
    assert outbox.expire_stale_sends() == 0


def test_task_arguments_carry_only_the_attempt_id(templates, patient_factory, system_user):
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    patient = patient_factory()
    with pytest.MonkeyPatch.context():
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            attempt, _ = plan(patient, [gap_for(patient, GapState.OUTREACH)], system_user)
    task = SignedPackage.loads(OrmQ.objects.get().payload)
    assert task["func"] == "outreach.tasks.send_attempt"
    assert task["args"] == (attempt.pk,)
    assert patient.family_name not in str(task) and patient.phone not in str(task)
