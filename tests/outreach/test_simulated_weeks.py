"""Five simulated weeks, hour by hour on a frozen clock, for a cohort with mixed consents.

Every hour the scheduled work runs as django-q2 would run it (sequence, reminders, outbox,
stale sends; the dormant sweep daily). Along the way a patient replies, one books on a call,
one texts STOP, one misses a visit. Then: every send passed the policy at its send time and was
inside 08:00-21:00 local, every block is recorded with reasons, nobody got two contacts for one
step, and the sequence, reminders, recovery, dormant sweep and callbacks did what domain.md 4 says.
"""

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import time_machine

from consent.models import BlockedSend, Channel
from consent.policy import check_contact
from gaps.care_gaps import GapState
from outreach.models import (
    AppointmentStatus,
    AttemptStatus,
    FollowUp,
    OutboundMessage,
    Outcome,
    OutreachAttempt,
    Step,
)
from outreach.services import appointments, outbox, sequence
from outreach.services.calls import Booking, log_call
from outreach.services.inbound import receive_sms
from tests.outreach.conftest import gap_for

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 6, 15, 4, 0, tzinfo=dt.UTC)  # Monday, midnight in Boston
WEEKS = 5
BOSTON = ZoneInfo("America/New_York")


def run_hour(now):
    sequence.tick_gap_sequence(now=now)
    sequence.tick_reminders(now=now)
    if now.hour == 13:
        sequence.sweep_dormant(now=now)
    outbox.expire_stale_sends(now=now)
    outbox.send_due(now=now)


def test_five_weeks_of_outreach_for_a_mixed_cohort(
    templates, patient_factory, agent_a, site_a, system_user
):
    with time_machine.travel(START, tick=False) as clock:
        cohort = {
            "texts": patient_factory(preferred_channels=["sms"]),
            "email": patient_factory(consents=("email",), preferred_channels=["email"]),
            "portal": patient_factory(consents=("portal",)),
            "letter_only": patient_factory(consents=()),
            "mornings": patient_factory(
                contact_days=[0, 1, 2, 3, 4], contact_start=dt.time(9), contact_end=dt.time(12)
            ),
            "do_not_contact": patient_factory(do_not_contact=True),
            "portal_only_unenrolled": patient_factory(portal_only=True),
            "replies": patient_factory(),
            "books": patient_factory(),
            "stops": patient_factory(),
            "misses_visit": patient_factory(),
        }
        gaps = {name: [gap_for(p)] for name, p in cohort.items()}
        gaps["texts"].append(
            gap_for(cohort["texts"], measure_code="CMS125")
        )  # one contact for both
        dormant = patient_factory()  # no gap, no visit in 12 months
        deceased = patient_factory()
        deceased.status = "deceased"
        deceased.save()

        stop_at = None
        for hour in range(WEEKS * 7 * 24):
            now = START + dt.timedelta(hours=hour)
            clock.move_to(now)
            run_hour(now)
            if hour == 34:  # Tuesday 10:00 in Boston: the patient who replies texts back
                receive_sms(cohort["replies"].phone, "Who is this? Call me", now)
            if hour == 58:  # Wednesday 10:00 in Boston: an agent reaches and books one patient
                log_call(
                    cohort["books"],
                    actor=agent_a,
                    outcome=Outcome.REACHED_SCHEDULED,
                    booking=Booking(site_id=site_a.pk, starts_at=now + dt.timedelta(days=4)),
                )
                appointments.book_appointment(
                    cohort["misses_visit"],
                    actor=agent_a,
                    site_id=site_a.pk,
                    starts_at=now + dt.timedelta(days=3),
                    gaps=gaps["misses_visit"],
                )
            if hour == 64:
                stop_at = now
                receive_sms(cohort["stops"].phone, "STOP", now)
            missed = (
                cohort["misses_visit"]
                .appointments.filter(
                    status=AppointmentStatus.BOOKED, starts_at__lte=now - dt.timedelta(hours=1)
                )
                .first()
            )
            if missed is not None:
                appointments.mark_no_show(missed, actor=agent_a)

    sent = OutreachAttempt.objects.filter(status=AttemptStatus.SENT).select_related("patient")
    counts = Counter(a.step for a in sent)
    print("\nsimulated five weeks:", dict(counts), "blocked:", BlockedSend.objects.count())

    # Every send passed the policy at its send time, inside allowed hours, once per step.
    for attempt in sent:
        decision = check_contact(
            attempt.patient, channel=attempt.channel, content_class="general", at=attempt.claimed_at
        )
        if attempt.patient != cohort["stops"]:
            assert decision.allowed, (attempt.pk, decision.reasons)
        local = attempt.claimed_at.astimezone(BOSTON)
        if attempt.channel != Channel.LETTER:  # a letter goes into the print batch at any hour
            assert 8 <= local.hour < 21, (attempt.pk, local)
        assert attempt.messages.count() == 1
    per_step = Counter((a.patient_id, a.step, a.window) for a in OutreachAttempt.objects.all())
    assert max(per_step.values()) == 1
    assert OutboundMessage.objects.count() == sent.count()
    # Every block is recorded with its reasons.
    for attempt in OutreachAttempt.objects.filter(status=AttemptStatus.BLOCKED):
        assert attempt.blocked_reasons and attempt.automated
        assert BlockedSend.objects.filter(purpose=f"outreach.attempt:{attempt.pk}").exists()

    def steps(name):
        return list(
            cohort[name]
            .outreach_attempts.filter(status=AttemptStatus.SENT)
            .order_by("claimed_at")
            .values_list("step", "channel", "claimed_at")
        )

    def state(name):
        return {g.state for g in cohort[name].gaps.all()}

    # The sequence: first, second 14 days later, then review; one contact covers both gaps.
    texts = steps("texts")
    assert [(s, c) for s, c, _ in texts] == [("gap_first", "sms"), ("gap_second", "sms")]
    assert texts[1][2] - texts[0][2] >= dt.timedelta(days=14)
    first = cohort["texts"].outreach_attempts.get(step=Step.GAP_FIRST)
    assert first.gaps.count() == 2
    assert state("texts") == {GapState.NEEDS_REVIEW}
    assert [c for _, c, _ in steps("email")][:1] == [Channel.EMAIL]
    assert [c for _, c, _ in steps("portal")][:1] == [Channel.PORTAL]
    assert [c for _, c, _ in steps("letter_only")][:1] == [Channel.LETTER]
    for _, _, at in steps("mornings"):
        local = at.astimezone(BOSTON)
        assert local.weekday() < 5 and 9 <= local.hour < 12
    # Nobody may contact: review with reasons, nothing sent.
    for name in ("do_not_contact", "portal_only_unenrolled"):
        assert steps(name) == [] and state(name) == {GapState.NEEDS_REVIEW}
    assert "do_not_contact" in gaps["do_not_contact"][0].history.latest().history_change_reason
    # A reply stops the second attempt and asks for a callback within one business day.
    assert [s for s, _, _ in steps("replies")] == ["gap_first"]
    callback = FollowUp.objects.get(patient=cohort["replies"], kind=FollowUp.Kind.CALLBACK)
    assert callback.due_at - callback.received_at <= dt.timedelta(days=3)
    # Booking stops the sequence; the reminders follow; unconfirmed 24 h ahead -> a call task.
    booked = [s for s, _, _ in steps("books")]
    assert booked.count("gap_second") == 0
    assert "reminder_48h" in booked and "day_of" in booked
    assert FollowUp.objects.filter(
        patient=cohort["books"], kind=FollowUp.Kind.CALL_UNCONFIRMED
    ).exists()
    # STOP: no text after it.
    assert (
        not cohort["stops"]
        .outreach_attempts.filter(
            channel=Channel.SMS, status=AttemptStatus.SENT, claimed_at__gt=stop_at
        )
        .exists()
    )
    # No-show: recovery within 24 hours of the missed visit.
    missed = cohort["misses_visit"].appointments.get(status=AppointmentStatus.NO_SHOW)
    recovery = cohort["misses_visit"].outreach_attempts.get(step=Step.NO_SHOW_RECOVERY)
    assert recovery.status == AttemptStatus.SENT
    assert recovery.claimed_at - missed.no_show_at <= dt.timedelta(hours=24)
    # Dormant: a re-engagement message, on a Tuesday to Thursday; never to the deceased.
    (dormant_step,) = steps_of = list(dormant.outreach_attempts.filter(status=AttemptStatus.SENT))
    assert dormant_step.step == Step.DORMANT
    assert dormant_step.claimed_at.astimezone(BOSTON).weekday() in (1, 2, 3)
    assert len(steps_of) == 1
    assert not deceased.outreach_attempts.exists()
