"""The scheduled sweeps: the gap sequence, appointment reminders, no-show recovery, post-procedure
check-ins and dormant patients. Each is idempotent (the attempt's unique key and the follow-up's
unique key make a rerun add nothing) and bounded per run (no catch-up storm after downtime).

Gap sequence (domain.md 4), per patient, one contact covering all their gaps:
    validated, due --> first contact on the preferred permitted channel (gaps -> outreach)
                   \\-> no automated channel but a call is allowed --> call task for an agent
                   \\-> nobody may contact --> needs_review with the reasons
    first contact sent 14 days ago, no appointment, no response --> second contact
    second contact sent 14 days ago, no response --> needs_review; automation stops
Booking an appointment or closing the gaps stops it at once (planned contacts are cancelled or
find nothing to do at send time).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q
from django.db.models.functions import Cast, ExtractYear
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import get_system_user
from gaps import workflow
from gaps.care_gaps import CareGap, GapState, NextStep
from outreach import events
from outreach.models import (
    UPCOMING,
    Appointment,
    AppointmentStatus,
    AttemptStatus,
    FollowUp,
    OutreachAttempt,
    Step,
)
from outreach.services.appointments import plan_recovery
from outreach.services.common import (
    CAMPAIGN_DAYS,
    NOBODY_MAY_CONTACT,
    choose_channel,
    facts_for,
    next_allowed_time,
    phone_permitted,
    raise_follow_up,
)
from outreach.services.outbox import SECOND_ATTEMPT_DAYS, plan_attempt
from patients.models import Patient

logger = logging.getLogger("outreach.sequence")

# Patients acted on per run: at ~0.4 s a patient on a loaded 2-core machine (bench
# outreach_sequence) a run stays far inside Q_TIMEOUT; the next run takes the next batch.
BATCH = 500
WORKED = (GapState.VALIDATED, GapState.OUTREACH, GapState.SCHEDULED, GapState.NEEDS_REVIEW)
ATTEMPTED = (AttemptStatus.SENT, AttemptStatus.FAILED)


def _gaps_of(patient_id: int, states) -> list[CareGap]:
    return list(
        CareGap.objects.filter(patient_id=patient_id, state__in=states)
        .select_related("patient")
        .order_by("pk")
    )


def _first_contact(patient: Patient, *, actor, now: dt.datetime) -> str:
    gaps = _gaps_of(patient.pk, (GapState.VALIDATED, GapState.OUTREACH))
    if not gaps:
        return "nothing"
    window = str(max(g.period_end.year for g in gaps))
    facts = facts_for(patient)
    channel, refused = choose_channel(patient, at=now, facts=facts)
    reasons = sorted({code for codes in refused.values() for code in codes})
    with transaction.atomic():
        if channel is None or NOBODY_MAY_CONTACT & set(reasons):
            call_refused = phone_permitted(facts, now)
            if call_refused or NOBODY_MAY_CONTACT & set(reasons):
                why = sorted(set(reasons) | set(call_refused))
                for gap in gaps:
                    workflow.flag_for_review(
                        gap,
                        actor=actor,
                        reason=f"No permitted channel ({', '.join(why)}); automated outreach "
                        "stops and a coordinator decides",
                    )
                events.publish(
                    events.OutreachEvent(
                        kind=events.GAPS_TO_REVIEW,
                        organization_id=patient.organization_id,
                        patient_id=patient.pk,
                    )
                )
                return "to_review"
            for gap in gaps:
                if gap.state == GapState.VALIDATED:
                    workflow.record_outreach_started(
                        gap, actor=actor, channel="phone", reason="No automated channel: call"
                    )
            if not FollowUp.objects.filter(
                patient_id=patient.pk, kind=FollowUp.Kind.OUTREACH_CALL, done_at__isnull=True
            ).exists():
                raise_follow_up(
                    patient,
                    kind=FollowUp.Kind.OUTREACH_CALL,
                    actor=actor,
                    due_at=now,
                    note=f"No automated channel ({', '.join(reasons)}): an agent calls",
                )
            return "call_task"
        when = next_allowed_time(facts, channel=channel, after=now) or now
        for gap in gaps:
            if gap.state == GapState.VALIDATED:
                workflow.record_outreach_started(
                    gap, actor=actor, channel=channel, reason="Sequence: first contact planned"
                )
        _, created = plan_attempt(
            patient,
            step=Step.GAP_FIRST,
            window=window,
            channel=channel,
            actor=actor,
            gaps=_gaps_of(patient.pk, (GapState.OUTREACH,)),
            not_before=when,
        )
    return "first" if created else "exists"


def _attempt_of(step: str):
    return OutreachAttempt.objects.filter(patient_id=OuterRef("patient_id"), step=step)


def selections(*, now: dt.datetime, limit: int = BATCH) -> dict:
    """What one tick reads before it acts: patients due a first contact, first contacts due a
    second, second contacts due a review (each bounded by `limit`)."""
    today = timezone.localdate(now)
    cutoff = now - dt.timedelta(days=SECOND_ATTEMPT_DAYS)
    first_due = (
        CareGap.objects.filter(
            state=GapState.VALIDATED,
            next_step=NextStep.FIRST_OUTREACH,
            next_step_due__lte=today,
        )
        .exclude(
            Exists(
                _attempt_of(Step.GAP_FIRST).filter(
                    window=Cast(ExtractYear(OuterRef("period_end")), CharField())
                )
            )
        )
        .values_list("patient_id", flat=True)
        .order_by("patient_id")
        .distinct()[:limit]
    )
    second_due = (
        OutreachAttempt.objects.filter(
            step=Step.GAP_FIRST, status__in=ATTEMPTED, attempted_at__lte=cutoff, response=""
        )
        .exclude(Exists(_attempt_of(Step.GAP_SECOND).filter(window=OuterRef("window"))))
        .filter(gaps__state=GapState.OUTREACH)
        .select_related("patient")
        .distinct()
        .order_by("pk")[:limit]
    )
    review_due = (
        OutreachAttempt.objects.filter(
            step=Step.GAP_SECOND, status__in=ATTEMPTED, attempted_at__lte=cutoff, response=""
        )
        .filter(gaps__state=GapState.OUTREACH)
        .distinct()
        .order_by("pk")[:limit]
    )
    return {
        "first contacts due": first_due,
        "second contacts due": second_due,
        "reviews due": review_due,
    }


def tick_gap_sequence(*, now: dt.datetime | None = None, limit: int = BATCH) -> Counter:
    """One pass of the gap sequence (module docstring). Returns what it did, by kind."""
    now = now or timezone.now()
    actor = get_system_user()
    done: Counter = Counter()
    selected = selections(now=now, limit=limit)
    first_due, firsts, seconds = selected.values()

    # 1. Validated gaps due for their first contact, whose patient has no first contact yet.
    for patient in Patient.objects.filter(pk__in=list(first_due)).order_by("pk"):
        try:
            done[_first_contact(patient, actor=actor, now=now)] += 1
        except DomainError as error:  # e.g. no template for the channel: counted, not fatal
            logger.warning("gap sequence: patient %s skipped: %s", patient.pk, error)
            done["skipped"] += 1

    # 2. A first contact 14 days old, gaps still in outreach, no reply: the second contact.
    for first in firsts:
        patient = first.patient
        gaps = list(first.gaps.filter(state=GapState.OUTREACH))
        facts = facts_for(patient)
        channel, refused = choose_channel(patient, at=now, facts=facts)
        try:
            with transaction.atomic():
                if channel is None:
                    why = sorted({c for codes in refused.values() for c in codes})
                    for gap in gaps:
                        workflow.flag_for_review(
                            gap,
                            actor=actor,
                            reason=f"No channel left for a second contact ({', '.join(why)})",
                        )
                    done["to_review"] += 1
                    continue
                plan_attempt(
                    patient,
                    step=Step.GAP_SECOND,
                    window=first.window,
                    channel=channel,
                    actor=actor,
                    gaps=gaps,
                    not_before=next_allowed_time(facts, channel=channel, after=now) or now,
                )
                done["second"] += 1
        except DomainError as error:
            logger.warning("gap sequence: patient %s skipped: %s", patient.pk, error)
            done["skipped"] += 1

    # 3. Two contacts without a response: a coordinator decides, automation stops.
    for second in seconds:
        answered = OutreachAttempt.objects.filter(
            patient_id=second.patient_id, window=second.window, step=Step.GAP_FIRST
        ).exclude(response="")
        if answered.exists():
            continue
        with transaction.atomic():
            for gap in second.gaps.filter(state=GapState.OUTREACH):
                workflow.flag_for_review(
                    gap,
                    actor=actor,
                    reason="Two contacts without a response; automated outreach stops",
                )
            events.publish(
                events.OutreachEvent(
                    kind=events.GAPS_TO_REVIEW,
                    organization_id=second.organization_id,
                    patient_id=second.patient_id,
                    attempt_id=second.pk,
                )
            )
        done["to_review"] += 1
    return done


def _plan_for_appointment(
    appointment: Appointment, *, step: str, actor, now: dt.datetime, expires_at: dt.datetime
) -> str:
    patient = appointment.patient
    facts = facts_for(patient)
    channel, _ = choose_channel(patient, at=now, facts=facts)
    if channel is None:
        return "no_channel"
    when = next_allowed_time(facts, channel=channel, after=now)
    if when is None or when >= expires_at:
        return "no_time"
    try:
        _, created = plan_attempt(
            patient,
            step=step,
            window=f"appt-{appointment.pk}",
            channel=channel,
            actor=actor,
            appointment=appointment,
            gaps=list(appointment.gaps.all()),
            not_before=when,
            expires_at=expires_at,
        )
    except DomainError as error:
        logger.warning("reminders: appointment %s skipped: %s", appointment.pk, error)
        return "skipped"
    return step if created else "exists"


def tick_reminders(*, now: dt.datetime | None = None, limit: int = BATCH) -> Counter:
    """48-hour reminders, day-of confirmations, call tasks for unconfirmed visits 24 hours
    ahead, no-show recovery not yet planned, and post-procedure check-ins."""
    now = now or timezone.now()
    actor = get_system_user()
    done: Counter = Counter()
    has = OutreachAttempt.objects.filter(appointment_id=OuterRef("pk"))

    upcoming = Appointment.objects.filter(status__in=UPCOMING).select_related("patient", "site")
    # 48 hours before (sent while more than a day remains).
    for appointment in upcoming.filter(
        starts_at__gt=now + dt.timedelta(hours=24), starts_at__lte=now + dt.timedelta(hours=48)
    ).exclude(Exists(has.filter(step=Step.REMINDER_48H)))[:limit]:
        done[
            _plan_for_appointment(
                appointment,
                step=Step.REMINDER_48H,
                actor=actor,
                now=now,
                expires_at=appointment.starts_at - dt.timedelta(hours=24),
            )
        ] += 1
    # Day-of confirmation: the morning of the visit, in the site's time zone.
    for appointment in upcoming.filter(
        starts_at__gt=now + dt.timedelta(hours=1), starts_at__lte=now + dt.timedelta(hours=24)
    ).exclude(Exists(has.filter(step=Step.DAY_OF)))[:limit]:
        zone = ZoneInfo(appointment.site.timezone)
        if appointment.starts_at.astimezone(zone).date() != now.astimezone(zone).date():
            continue
        done[
            _plan_for_appointment(
                appointment,
                step=Step.DAY_OF,
                actor=actor,
                now=now,
                expires_at=appointment.starts_at - dt.timedelta(hours=1),
            )
        ] += 1
    # Not confirmed 24 hours before: a call task for an agent.
    unconfirmed = Appointment.objects.filter(
        status=AppointmentStatus.BOOKED,
        starts_at__gt=now,
        starts_at__lte=now + dt.timedelta(hours=24),
    ).exclude(
        Exists(
            FollowUp.objects.filter(
                appointment_id=OuterRef("pk"), kind=FollowUp.Kind.CALL_UNCONFIRMED
            )
        )
    )
    for appointment in unconfirmed.select_related("patient")[:limit]:
        raise_follow_up(
            appointment.patient,
            kind=FollowUp.Kind.CALL_UNCONFIRMED,
            actor=actor,
            due_at=now,
            appointment=appointment,
            note="Not confirmed 24 hours before: call the patient",
        )
        done["call_unconfirmed"] += 1
    # No-shows without a recovery contact or call task (e.g. recorded by an import).
    no_shows = (
        Appointment.objects.filter(
            status=AppointmentStatus.NO_SHOW, no_show_at__gte=now - dt.timedelta(hours=24)
        )
        .exclude(Exists(has.filter(step=Step.NO_SHOW_RECOVERY)))
        .exclude(
            Exists(
                FollowUp.objects.filter(
                    appointment_id=OuterRef("pk"), kind=FollowUp.Kind.NO_SHOW_CALL
                )
            )
        )
        .select_related("patient")
    )
    for appointment in no_shows[:limit]:
        with transaction.atomic():
            plan_recovery(appointment, actor=actor, now=now)
        done["no_show_recovery"] += 1
    # Post-procedure check-in, 24 to 72 hours after the procedure.
    procedures = (
        Appointment.objects.filter(
            status=AppointmentStatus.COMPLETED,
            kind=Appointment.Kind.PROCEDURE,
            starts_at__gt=now - dt.timedelta(hours=72),
            starts_at__lte=now,
        )
        .exclude(Exists(has.filter(step=Step.POST_PROCEDURE)))
        .select_related("patient")
    )
    for appointment in procedures[:limit]:
        patient = appointment.patient
        facts = facts_for(patient)
        channel, _ = choose_channel(patient, at=now, facts=facts)
        start = max(now, appointment.starts_at + dt.timedelta(hours=24))
        end = appointment.starts_at + dt.timedelta(hours=72)
        when = next_allowed_time(facts, channel=channel, after=start) if channel else None
        if when is None or when >= end:
            done["no_channel"] += 1
            continue
        try:
            plan_attempt(
                patient,
                step=Step.POST_PROCEDURE,
                window=f"appt-{appointment.pk}",
                channel=channel,
                actor=actor,
                appointment=appointment,
                not_before=when,
                expires_at=end,
            )
            done["post_procedure"] += 1
        except DomainError as error:
            logger.warning("post-procedure: appointment %s skipped: %s", appointment.pk, error)
    return done


DORMANT_DAYS = 365


def dormant_patients(*, now: dt.datetime):
    """Active patients with no completed visit (appointment or finished encounter) in 12 months
    and no re-engagement message in 12 months. Deceased, moved and disenrolled are not active."""
    from patients.models import ClinicalRecord

    since = now - dt.timedelta(days=DORMANT_DAYS)
    visits = Appointment.objects.filter(
        patient_id=OuterRef("pk"), status=AppointmentStatus.COMPLETED, starts_at__gte=since
    )
    encounters = ClinicalRecord.objects.filter(
        patient_id=OuterRef("pk"), resource_type="Encounter", status="finished"
    ).filter(Q(start_date__gte=since.date()) | Q(start_at__gte=since))
    reengaged = OutreachAttempt.objects.filter(
        patient_id=OuterRef("pk"), step=Step.DORMANT, planned_at__gte=since
    )
    return (
        Patient.objects.active()
        .exclude(Exists(visits))
        .exclude(Exists(encounters))
        .exclude(Exists(reengaged))
        .exclude(Exists(Appointment.objects.filter(patient_id=OuterRef("pk"), status__in=UPCOMING)))
        # A patient the gap sequence is working is not dormant to us; one message at a time.
        .exclude(Exists(CareGap.objects.filter(patient_id=OuterRef("pk"), state__in=WORKED)))
    )


def sweep_dormant(*, now: dt.datetime | None = None, limit: int = BATCH) -> Counter:
    """A re-engagement message for dormant patients: a campaign, so Tuesday to Thursday when the
    patient's window allows, inside allowed hours, and never against preferences."""
    now = now or timezone.now()
    actor = get_system_user()
    done: Counter = Counter()
    for patient in dormant_patients(now=now).order_by("pk")[:limit]:
        facts = facts_for(patient)
        channel, _ = choose_channel(patient, at=now, facts=facts)
        if channel is None:
            done["no_channel"] += 1
            continue
        when = next_allowed_time(facts, channel=channel, after=now, prefer_days=CAMPAIGN_DAYS)
        try:
            with transaction.atomic():
                _, created = plan_attempt(
                    patient,
                    step=Step.DORMANT,
                    window=f"{timezone.localdate(now):%Y-%m}",
                    channel=channel,
                    actor=actor,
                    not_before=when or now,
                )
            done["dormant" if created else "exists"] += 1
        except DomainError as error:
            logger.warning("dormant sweep: patient %s skipped: %s", patient.pk, error)
            done["skipped"] += 1
    return done
