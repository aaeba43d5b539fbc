"""Demo outreach for `manage.py seed_demo`: templates, the calls behind gaps in outreach, and
appointments behind scheduled gaps, consistent with the contact policy (deterministic).

Only patients the policy lets an agent call get a logged call; every scheduled gap gets its
appointment at the patient's site; a few appointments are confirmed.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from django.utils import timezone

from carehub.history import bulk_create_untracked, bulk_create_with_history, get_system_user
from consent.models import Channel, ContentClass
from consent.policy import TIME_REASONS, check_contacts
from gaps.care_gaps import CareGap, GapState
from outreach.models import (
    Appointment,
    AppointmentStatus,
    AttemptStatus,
    MessageTemplate,
    Outcome,
    OutreachAttempt,
    Purpose,
    Step,
)
from patients.models import Organization, Patient, Site

REASON = "demo data (seed_demo)"
SEED = 10_2026
BODIES = {
    Purpose.GAP_OUTREACH: (
        "Hello {{ patient_first_name }}, you are due for a health screening. Call "
        "{{ practice_name }} at {{ practice_phone }} to schedule."
    ),
    Purpose.APPOINTMENT_REMINDER: (
        "Reminder: your visit at {{ site_name }} on {{ appointment_time }}. Reply YES to confirm."
    ),
    Purpose.DAY_OF_CONFIRMATION: "See you today at {{ appointment_time }}, {{ site_name }}.",
    Purpose.NO_SHOW_RECOVERY: (
        "We missed you today. Call {{ practice_phone }} and we will find a new time."
    ),
    Purpose.WAITLIST_OFFER: (
        "A visit opened at {{ site_name }} on {{ appointment_time }}. Call {{ practice_phone }}."
    ),
    Purpose.POST_PROCEDURE: "How are you feeling after your visit? Call {{ practice_phone }}.",
    Purpose.DORMANT: "It has been a while. {{ practice_name }} would like to see you this year.",
    Purpose.SELF_SERVICE_LINK: (
        "Choose how {{ practice_name }} contacts you: {{ preferences_link }}"
    ),
}
CHANNELS = (Channel.PORTAL, Channel.SMS, Channel.EMAIL, Channel.VOICE, Channel.LETTER)


def seed_demo_outreach(organizations: list[Organization]) -> tuple[int, int, int]:
    """Templates, call attempts and appointments; returns their counts."""
    actor = get_system_user()
    rng = random.Random(SEED)
    now = timezone.now()
    templates = [
        MessageTemplate(
            organization=organization,
            name=f"{Purpose(purpose).label} ({Channel(channel).label})",
            purpose=purpose,
            channel=channel,
            language="en",
            content_class=ContentClass.GENERAL,
            subject="A message from your practice" if channel in ("portal", "email") else "",
            body=body,
        )
        for organization in organizations
        for purpose, body in BODIES.items()
        for channel in CHANNELS
    ]
    bulk_create_with_history(templates, actor=actor, reason=REASON)

    worked = CareGap.objects.filter(
        organization__in=organizations, state__in=(GapState.OUTREACH, GapState.SCHEDULED)
    ).select_related("patient")
    patient_ids = {gap.patient_id for gap in worked}
    midday = now.replace(hour=17, minute=0, second=0, microsecond=0)
    callable_ids = {
        pk
        for pk, decision in check_contacts(
            Patient.objects.filter(pk__in=patient_ids),
            channel=Channel.PHONE,
            content_class=ContentClass.GENERAL,
            at=midday,
        ).items()
        if not set(decision.reasons) - TIME_REASONS
    }
    sites = {}
    for site in Site.objects.filter(organization__in=organizations).order_by("pk"):
        sites.setdefault(site.organization_id, site)
    attempts, gap_links, appointments, appointment_gaps = [], [], [], []
    for gap in sorted(worked, key=lambda g: g.pk):
        if gap.patient_id not in callable_ids:
            continue
        called = now - dt.timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 6))
        outcome = (
            Outcome.REACHED_SCHEDULED
            if gap.state == GapState.SCHEDULED
            else rng.choice([Outcome.NO_ANSWER, Outcome.LEFT_VOICEMAIL])
        )
        attempt = OutreachAttempt(
            organization_id=gap.organization_id,
            patient_id=gap.patient_id,
            step=Step.AGENT_CALL,
            window=f"demo-{gap.pk}",
            channel=Channel.PHONE,
            content_class=ContentClass.GENERAL,
            status=AttemptStatus.LOGGED,
            outcome=outcome,
            automated=False,
            actor=actor,
            planned_at=called,
            not_before=called,
            attempted_at=called,
            outcome_at=called,
            next_step="Call again" if outcome != Outcome.REACHED_SCHEDULED else "Visit",
            next_step_due=gap.next_step_due,
        )
        attempts.append(attempt)
        gap_links.append((attempt, gap))
        if gap.state == GapState.SCHEDULED:
            site = gap.patient.attributed_site or sites.get(gap.organization_id)
            if site is None:
                continue
            day = gap.scheduled_for or (now + dt.timedelta(days=3)).date()
            starts = dt.datetime.combine(
                day, dt.time(rng.choice([9, 10, 11, 14, 15])), tzinfo=ZoneInfo(site.timezone)
            )
            confirmed = rng.random() < 0.4
            appointment = Appointment(
                organization_id=gap.organization_id,
                patient_id=gap.patient_id,
                site=site,
                starts_at=starts,
                status=AppointmentStatus.CONFIRMED
                if rng.random() < 0.4
                else AppointmentStatus.BOOKED,
                booked_by=actor,
                booked_at=called,
                confirmed_at=called if confirmed else None,
            )
            appointments.append(appointment)
            appointment_gaps.append((appointment, gap))
    bulk_create_with_history(attempts, actor=actor, reason=REASON)
    bulk_create_with_history(appointments, actor=actor, reason=REASON)
    bulk_create_untracked(
        [
            OutreachAttempt.gaps.through(outreachattempt_id=a.pk, caregap_id=g.pk)
            for a, g in gap_links
        ]
    )
    bulk_create_untracked(
        [
            Appointment.gaps.through(appointment_id=a.pk, caregap_id=g.pk)
            for a, g in appointment_gaps
        ]
    )
    return len(templates), len(attempts), len(appointments)
