"""Starting outreach through the policy, an agent's call in one step, appointments after it."""

import datetime as dt

import pytest
import time_machine

from carehub.errors import DomainError
from consent.models import BlockedSend
from consent.policy import ContactRefused
from gaps import workflow
from gaps.care_gaps import GapState
from outreach.models import (
    AppointmentStatus,
    AttemptStatus,
    FollowUp,
    Outcome,
    Step,
    WaitlistEntry,
)
from outreach.services import appointments, outbox
from outreach.services.calls import Booking, log_call, start_outreach
from outreach.templating import TemplateRefused, check_template, clinical_words
from tests.outreach.conftest import IN_MEASUREMENT_YEAR, gap_for

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=False)]
NOW = IN_MEASUREMENT_YEAR  # Tuesday 11:00 in Boston


def test_a_general_template_naming_a_test_is_refused_with_the_words():
    with pytest.raises(TemplateRefused, match="'colonoscopy', 'A1c'"):
        check_template(
            channel="sms",
            content_class="general",
            subject="",
            body="Time for your colonoscopy and A1c, {{ patient_first_name }}",
        )
    check_template(
        channel="portal", content_class="clinical", subject="", body="Your colonoscopy is due"
    )
    with pytest.raises(TemplateRefused, match="portal"):
        check_template(channel="sms", content_class="clinical", subject="", body="hello")
    with pytest.raises(TemplateRefused, match="Unknown field"):
        check_template(channel="sms", content_class="general", subject="", body="{{ mrn }}")
    assert clinical_words("We can fit you in for a health screening") == []


def test_a_do_not_contact_patient_goes_to_review_instead_of_outreach(
    templates, patient_factory, agent_a
):
    patient = patient_factory(do_not_contact=True)
    gap = gap_for(patient)
    result = start_outreach(gap, actor=agent_a, channel="phone")
    gap.refresh_from_db()
    assert result.state == gap.state == GapState.NEEDS_REVIEW
    assert "do_not_contact" in result.reasons
    assert "do_not_contact" in gap.history.latest().history_change_reason
    assert not patient.outreach_attempts.exists()


def test_a_refused_channel_names_the_reasons_and_the_open_channels(
    templates, patient_factory, agent_a
):
    patient = patient_factory(consents=())  # no TCPA consent: no texts, calls are fine
    gap = gap_for(patient)
    with pytest.raises(ContactRefused, match=r"TCPA.*Channels open for this patient: .*phone"):
        start_outreach(gap, actor=agent_a, channel="sms")
    gap.refresh_from_db()
    assert gap.state == GapState.VALIDATED
    result = start_outreach(gap, actor=agent_a, channel="letter")
    assert result.state == GapState.OUTREACH and result.attempt.step == Step.GAP_FIRST


def test_the_workflow_itself_refuses_outreach_without_a_permitted_channel(patient_factory, agent_a):
    patient = patient_factory(do_not_contact=True)
    gap = gap_for(patient)
    with pytest.raises(ContactRefused, match="asked not to be contacted"):
        workflow.record_outreach_started(gap, actor=agent_a, channel="phone")
    with pytest.raises(TypeError):
        workflow.record_outreach_started(gap, actor=agent_a)  # the channel must be named


def test_reached_and_scheduled_books_and_schedules_in_one_step(
    templates, patient_factory, agent_a, site_a, provider_a
):
    patient = patient_factory()
    gaps = [gap_for(patient), gap_for(patient, measure_code="CMS125")]
    starts = NOW + dt.timedelta(days=5)
    attempt = log_call(
        patient,
        actor=agent_a,
        outcome=Outcome.REACHED_SCHEDULED,
        response="Happy to come in",
        next_step="Visit",
        booking=Booking(site_id=site_a.pk, provider_id=provider_a.pk, starts_at=starts),
    )
    assert attempt.status == AttemptStatus.LOGGED and attempt.actor == agent_a
    appointment = patient.appointments.get()
    assert appointment.site == site_a and appointment.provider == provider_a
    assert set(appointment.gaps.all()) == set(gaps)
    for gap in gaps:
        gap.refresh_from_db()
        assert gap.state == GapState.SCHEDULED
        assert [h.state for h in gap.history.order_by("history_id")][-2:] == [
            "outreach",
            "scheduled",
        ]
    # Completing the visit before it starts is refused, by the appointment and by the gap.
    with pytest.raises(DomainError, match="before it starts"):
        appointments.complete_appointment(appointment, actor=agent_a)
    with pytest.raises(DomainError, match="cannot be done before it"):
        workflow.mark_completed(gaps[0], actor=agent_a)
    with time_machine.travel(starts + dt.timedelta(minutes=40), tick=False):
        appointments.complete_appointment(appointment, actor=agent_a)
    gaps[0].refresh_from_db()
    assert gaps[0].state == GapState.COMPLETED


def test_a_call_outside_calling_hours_is_recorded_as_blocked_and_changes_nothing(
    patient_factory, agent_a
):
    patient = patient_factory()
    gap = gap_for(patient)
    with time_machine.travel(dt.datetime(2026, 6, 17, 2, 0, tzinfo=dt.UTC), tick=False):
        attempt = log_call(patient, actor=agent_a, outcome=Outcome.NO_ANSWER)  # 22:00 Boston
    assert attempt.status == AttemptStatus.BLOCKED
    assert attempt.blocked_reasons == ["quiet_hours"]
    assert BlockedSend.objects.filter(patient=patient, reasons=["quiet_hours"]).exists()
    gap.refresh_from_db()
    assert gap.state == GapState.VALIDATED


def test_a_clinical_concern_escalates_to_a_coordinator_at_once(patient_factory, agent_a):
    patient = patient_factory()
    gap_for(patient)
    attempt = log_call(
        patient,
        actor=agent_a,
        outcome=Outcome.LEFT_VOICEMAIL,
        clinical_concern=True,
        next_step_due=NOW.date() + dt.timedelta(days=2),
    )
    follow_up = FollowUp.objects.get(attempt=attempt)
    assert follow_up.kind == FollowUp.Kind.CLINICAL_CONCERN
    assert follow_up.due_at == NOW


def test_a_no_show_reopens_outreach_with_recovery_within_24_hours(
    templates, patient_factory, agent_a, site_a
):
    patient = patient_factory()
    gap = gap_for(patient, GapState.OUTREACH)
    starts = NOW + dt.timedelta(days=1)
    appointment = appointments.book_appointment(
        patient, actor=agent_a, site_id=site_a.pk, starts_at=starts, gaps=[gap]
    )
    gap.refresh_from_db()
    assert gap.state == GapState.SCHEDULED
    with pytest.raises(DomainError, match="after the appointment's start"):
        appointments.mark_no_show(appointment, actor=agent_a)
    missed = starts + dt.timedelta(hours=1)
    with time_machine.travel(missed, tick=False):
        appointments.mark_no_show(appointment, actor=agent_a)
        gap.refresh_from_db()
        assert gap.state == GapState.OUTREACH
        assert gap.next_step_due <= (missed + dt.timedelta(hours=24)).date()
        recovery = patient.outreach_attempts.get(step=Step.NO_SHOW_RECOVERY)
        assert recovery.not_before <= missed + dt.timedelta(hours=24)
        assert outbox.send_attempt(recovery.pk) == "sent"


def test_a_cancellation_offers_the_slot_to_the_waitlist(
    templates, patient_factory, agent_a, site_a
):
    patient = patient_factory()
    waiting = patient_factory()
    entry = appointments.join_waitlist(waiting, site=site_a, actor=agent_a)
    appointment = appointments.book_appointment(
        patient, actor=agent_a, site_id=site_a.pk, starts_at=NOW + dt.timedelta(days=3)
    )
    with pytest.raises(DomainError, match="why"):
        appointments.cancel_appointment(appointment, actor=agent_a, reason=" ")
    appointments.cancel_appointment(appointment, actor=agent_a, reason="patient travelling")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    entry.refresh_from_db()
    assert entry.status == WaitlistEntry.Status.OFFERED and entry.offered_slot == appointment
    offer = waiting.outreach_attempts.get(step=Step.WAITLIST_OFFER)
    assert offer.window == f"slot-{appointment.pk}"


def test_another_organizations_agent_cannot_log_a_call(patient_factory, agent_b):
    from carehub.errors import NotAllowed

    patient = patient_factory()
    with pytest.raises(NotAllowed):
        log_call(patient, actor=agent_b, outcome=Outcome.NO_ANSWER)
    assert not patient.outreach_attempts.exists()
