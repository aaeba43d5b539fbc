"""The scheduled sweeps one by one: post-procedure check-in, dormant patients, callbacks, and a
property test of the outbox under any order of duplicated sends, revocations and timeouts."""

import datetime as dt

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.models import Consent
from consent.services import revoke_consent
from outreach.models import AttemptStatus, FollowUp, OutboundMessage, Step
from outreach.services import appointments, outbox, sequence
from outreach.services.common import complete_follow_up
from outreach.services.inbound import record_voicemail
from tests.outreach.conftest import IN_MEASUREMENT_YEAR

pytestmark = [pytest.mark.django_db]
NOW = IN_MEASUREMENT_YEAR  # Tuesday 2026-06-16 11:00 in Boston


def test_a_procedure_gets_a_check_in_between_24_and_72_hours(
    templates, patient_factory, agent_a, site_a
):
    patient = patient_factory()
    with time_machine.travel(NOW, tick=False):
        appointment = appointments.book_appointment(
            patient,
            actor=agent_a,
            site_id=site_a.pk,
            starts_at=NOW + dt.timedelta(hours=2),
            kind="procedure",
        )
    done = NOW + dt.timedelta(hours=3)
    with time_machine.travel(done, tick=False):
        appointments.complete_appointment(appointment, actor=agent_a)
        assert sequence.tick_reminders(now=done)["post_procedure"] == 1
        assert sequence.tick_reminders(now=done)["post_procedure"] == 0  # once
    check_in = patient.outreach_attempts.get(step=Step.POST_PROCEDURE)
    assert check_in.not_before >= appointment.starts_at + dt.timedelta(hours=24)
    assert check_in.expires_at == appointment.starts_at + dt.timedelta(hours=72)
    assert outbox.send_attempt(check_in.pk, now=done) == "not due"
    with time_machine.travel(check_in.not_before, tick=False):
        assert outbox.send_attempt(check_in.pk) == "sent"


def test_dormant_sweep_skips_the_deceased_the_moved_and_recent_visitors(
    templates, patient_factory, agent_a, site_a
):
    dormant = patient_factory()
    moved = patient_factory()
    moved.status = "moved"
    moved.save()
    visited = patient_factory()
    with time_machine.travel(NOW - dt.timedelta(days=60), tick=False):
        visit = appointments.book_appointment(
            visited, actor=agent_a, site_id=site_a.pk, starts_at=NOW - dt.timedelta(days=59)
        )
    with time_machine.travel(NOW - dt.timedelta(days=58), tick=False):
        appointments.complete_appointment(visit, actor=agent_a)
    monday = NOW - dt.timedelta(days=1)
    with time_machine.travel(monday, tick=False):
        done = sequence.sweep_dormant(now=monday)
        assert done["dormant"] == 1
        assert sequence.sweep_dormant(now=monday)["dormant"] == 0
    (attempt,) = dormant.outreach_attempts.all()
    assert attempt.not_before.date() == NOW.date()  # a campaign: Monday -> Tuesday
    assert (
        not moved.outreach_attempts.exists()
        and not visited.outreach_attempts.filter(step=Step.DORMANT).exists()
    )


def test_a_voicemail_asks_for_a_callback_within_one_business_day_and_its_lag_is_kept(
    patient_factory, agent_a
):
    patient = patient_factory()
    friday = dt.datetime(2026, 6, 19, 20, 0, tzinfo=dt.UTC)
    with time_machine.travel(friday, tick=False):
        callback = record_voicemail(patient, actor=agent_a)
    assert callback.due_at == dt.datetime(2026, 6, 22, 20, 0, tzinfo=dt.UTC)  # Monday
    with time_machine.travel(friday + dt.timedelta(hours=65), tick=False):
        complete_follow_up(callback, actor=agent_a, note="called back, booked")
    callback.refresh_from_db()
    assert callback.lag_seconds == 65 * 3600 and callback.done_by == agent_a
    assert callback.history.latest().history_user == agent_a


OPERATIONS = st.lists(
    st.sampled_from(["send", "send", "revoke", "expire", "duplicate_plan"]), max_size=8
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
def test_whatever_happens_a_contact_is_made_at_most_once(
    operations, templates, patient_factory, system_user, agent_a
):
    with time_machine.travel(NOW, tick=False):
        patient = patient_factory()
        attempt, _ = outbox.plan_attempt(
            patient, step=Step.DORMANT, window="prop", channel="sms", actor=system_user
        )
        for operation in operations:
            if operation == "send":
                outbox.send_attempt(attempt.pk)
            elif operation == "revoke":
                revoke_consent(
                    patient, kind=Consent.Kind.SMS_TCPA, method="written_form", actor=agent_a
                )
            elif operation == "expire":
                outbox.expire_stale_sends(now=NOW + dt.timedelta(hours=2))
            else:
                again, created = outbox.plan_attempt(
                    patient, step=Step.DORMANT, window="prop", channel="sms", actor=system_user
                )
                assert again.pk == attempt.pk and not created
        attempt.refresh_from_db()
        messages = OutboundMessage.objects.filter(attempt=attempt).count()
        assert messages <= 1
        assert (attempt.status == AttemptStatus.SENT) == (messages == 1)
        if attempt.status == AttemptStatus.BLOCKED:
            assert attempt.blocked_reasons == ["no_tcpa_consent"]
        sends = [i for i, op in enumerate(operations) if op == "send"]
        revokes = [i for i, op in enumerate(operations) if op == "revoke"]
        if sends and (not revokes or sends[0] < revokes[0]):
            assert attempt.status == AttemptStatus.SENT
        assert not FollowUp.objects.filter(attempt=attempt, kind="unknown_send").exists()
