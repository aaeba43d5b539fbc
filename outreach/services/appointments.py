"""Appointments and what follows them.

    booked --confirm--> confirmed
    booked|confirmed --complete (not before the start)--> completed   (gaps -> completed)
    booked|confirmed --no-show--> no_show   (gaps -> outreach, recovery contact within 24 h)
    booked|confirmed --cancel--> cancelled  (gaps -> outreach, the slot offered to the waitlist)

Booking moves the gaps it addresses to `scheduled` and stops the patient's pending gap contacts
at once (their planned attempts are cancelled). Each change locks the appointment, checks the
table and records who and why.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from carehub.errors import Conflict, DomainError
from carehub.history import save_with_history
from gaps import workflow
from gaps.care_gaps import CareGap, GapState
from outreach import events
from outreach.models import (
    UPCOMING,
    Appointment,
    AppointmentStatus,
    AttemptStatus,
    FollowUp,
    OutreachAttempt,
    Step,
    WaitlistEntry,
)
from outreach.services.common import check_actor, choose_channel, raise_follow_up
from patients.models import Patient, Provider, Site

A = AppointmentStatus
# Recovery outreach after a missed visit is due within this many hours (domain.md 4).
NO_SHOW_RECOVERY_HOURS = 24


def _published(appointment: Appointment) -> None:
    events.publish(
        events.OutreachEvent(
            kind=events.APPOINTMENT_CHANGED,
            organization_id=appointment.organization_id,
            patient_id=appointment.patient_id,
            appointment_id=appointment.pk,
            status=appointment.status,
        )
    )


def _lock(appointment: Appointment, actor, allowed: tuple[str, ...], what: str) -> Appointment:
    locked = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("patient", "site")
        .get(pk=appointment.pk)
    )
    check_actor(locked.organization_id, actor)
    if locked.status not in allowed:
        raise Conflict(f"Cannot {what}: the appointment is {locked.get_status_display().lower()}")
    return locked


def stop_pending_gap_contacts(patient_id: int, *, actor, reason: str) -> int:
    """Planned gap contacts of the patient are cancelled: an appointment made them moot."""
    pending = OutreachAttempt.objects.select_for_update().filter(
        patient_id=patient_id,
        status=AttemptStatus.PLANNED,
        step__in=(Step.GAP_FIRST, Step.GAP_SECOND, Step.NO_SHOW_RECOVERY, Step.DORMANT),
    )
    count = 0
    for attempt in pending:
        attempt.status = AttemptStatus.CANCELLED
        attempt.outcome_at = timezone.now()
        save_with_history(
            attempt, actor=actor, reason=reason, update_fields=["status", "outcome_at"]
        )
        count += 1
    return count


@transaction.atomic
def book_appointment(
    patient: Patient,
    *,
    actor,
    site_id: int,
    starts_at: dt.datetime,
    provider_id: int | None = None,
    kind: str = Appointment.Kind.VISIT,
    gaps: list[CareGap] = (),
    duration_minutes: int = 30,
    attempt: OutreachAttempt | None = None,
    reason: str = "",
) -> Appointment:
    check_actor(patient.organization_id, actor)
    if timezone.is_naive(starts_at):
        raise DomainError("The appointment time needs a time zone")
    if starts_at <= timezone.now():
        raise DomainError("The appointment must be in the future")
    site = Site.objects.filter(pk=site_id, organization_id=patient.organization_id).first()
    if site is None:
        raise DomainError("Choose a site of the patient's organization")
    if (
        provider_id is not None
        and not Provider.objects.filter(
            pk=provider_id, organization_id=patient.organization_id, is_active=True
        ).exists()
    ):
        raise DomainError("Choose an active provider of the patient's organization")
    if kind not in Appointment.Kind.values:
        raise DomainError(f"Unknown appointment kind {kind!r}")
    gaps = list(gaps)
    if any(g.patient_id != patient.pk for g in gaps):
        raise DomainError("An appointment addresses only the patient's own gaps")
    now = timezone.now()
    appointment = Appointment(
        organization_id=patient.organization_id,
        patient=patient,
        site=site,
        provider_id=provider_id,
        starts_at=starts_at,
        duration_minutes=duration_minutes,
        kind=kind,
        booked_by=actor,
        booked_at=now,
    )
    save_with_history(appointment, actor=actor, reason=reason or "Appointment booked")
    appointment.gaps.set(gaps)
    day = starts_at.astimezone(dt.UTC).date()
    for gap in gaps:
        if gap.state == GapState.OUTREACH:
            workflow.mark_scheduled(
                gap,
                actor=actor,
                appointment_on=max(day, timezone.localdate()),
                reason=f"Appointment #{appointment.pk} booked at {site.name}",
            )
    stop_pending_gap_contacts(
        patient.pk, actor=actor, reason=f"Appointment #{appointment.pk} booked: contact stopped"
    )
    _published(appointment)
    return appointment


@transaction.atomic
def confirm_appointment(appointment: Appointment, *, actor, reason: str = "") -> Appointment:
    appointment = _lock(appointment, actor, (A.BOOKED,), "confirm")
    appointment.status = A.CONFIRMED
    appointment.confirmed_at = timezone.now()
    save_with_history(appointment, actor=actor, reason=reason or "Confirmed")
    _published(appointment)
    return appointment


@transaction.atomic
def complete_appointment(appointment: Appointment, *, actor, reason: str = "") -> Appointment:
    """The visit happened: refused before its start; its gaps become completed."""
    appointment = _lock(appointment, actor, UPCOMING, "complete")
    now = timezone.now()
    if now < appointment.starts_at:
        raise DomainError(
            f"The appointment starts at {appointment.starts_at:%Y-%m-%d %H:%M} UTC: "
            "it cannot be completed before it starts"
        )
    appointment.status = A.COMPLETED
    appointment.completed_at = now
    save_with_history(appointment, actor=actor, reason=reason or "Visit completed")
    for gap in appointment.gaps.filter(state=GapState.SCHEDULED):
        workflow.mark_completed(
            gap,
            actor=actor,
            completed_on=timezone.localdate(),
            reason=f"Appointment #{appointment.pk} completed",
        )
    _published(appointment)
    return appointment


@transaction.atomic
def mark_no_show(appointment: Appointment, *, actor, reason: str = "") -> Appointment:
    """Missed: the gaps go back to outreach and a rescheduling invitation is due within 24 h."""
    appointment = _lock(appointment, actor, UPCOMING, "record a no-show")
    now = timezone.now()
    if now < appointment.starts_at:
        raise DomainError("A no-show is recorded only after the appointment's start")
    appointment.status = A.NO_SHOW
    appointment.no_show_at = now
    save_with_history(appointment, actor=actor, reason=reason or "No-show")
    due = (now + dt.timedelta(hours=NO_SHOW_RECOVERY_HOURS)).date()
    for gap in appointment.gaps.filter(state=GapState.SCHEDULED):
        workflow.reopen_after_no_show(
            gap,
            actor=actor,
            next_attempt_on=due,
            reason=f"No-show at appointment #{appointment.pk}",
        )
    plan_recovery(appointment, actor=actor, now=now)
    _published(appointment)
    return appointment


def plan_recovery(appointment: Appointment, *, actor, now: dt.datetime) -> None:
    """The rescheduling invitation on the best permitted channel, or a call task for an agent;
    either way due within 24 hours of the no-show."""
    from outreach.services.common import facts_for, next_allowed_time
    from outreach.services.outbox import plan_attempt

    patient = appointment.patient
    deadline = now + dt.timedelta(hours=NO_SHOW_RECOVERY_HOURS)
    facts = facts_for(patient)
    channel, _ = choose_channel(patient, at=now, facts=facts)
    when = next_allowed_time(facts, channel=channel, after=now) if channel is not None else None
    if channel is not None and when is not None and when < deadline:
        plan_attempt(
            patient,
            step=Step.NO_SHOW_RECOVERY,
            window=f"appt-{appointment.pk}",
            channel=channel,
            actor=actor,
            gaps=list(appointment.gaps.all()),
            appointment=appointment,
            not_before=when,
            expires_at=deadline,
        )
        return
    raise_follow_up(
        patient,
        kind=FollowUp.Kind.NO_SHOW_CALL,
        actor=actor,
        due_at=deadline,
        appointment=appointment,
        note="No automated channel can reach the patient within 24 hours: call to reschedule",
    )


@transaction.atomic
def cancel_appointment(appointment: Appointment, *, actor, reason: str) -> Appointment:
    """Cancelled: the gaps go back to outreach and the freed slot is offered to the waitlist."""
    appointment = _lock(appointment, actor, UPCOMING, "cancel")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why the appointment is cancelled")
    appointment.status = A.CANCELLED
    appointment.cancelled_at = timezone.now()
    save_with_history(appointment, actor=actor, reason=f"Cancelled: {reason}")
    for gap in appointment.gaps.filter(state=GapState.SCHEDULED):
        workflow.reopen_after_no_show(
            gap,
            actor=actor,
            reason=f"Appointment #{appointment.pk} cancelled: back to outreach",
        )
    offer_freed_slot(appointment, actor=actor)
    _published(appointment)
    return appointment


def offer_freed_slot(appointment: Appointment, *, actor) -> WaitlistEntry | None:
    """The first waiting patient at the site gets the slot offered (one offer per slot)."""
    from outreach.services.outbox import plan_attempt

    now = timezone.now()
    if appointment.starts_at <= now:
        return None
    waiting = (
        WaitlistEntry.objects.select_for_update(skip_locked=True)
        .filter(site_id=appointment.site_id, status=WaitlistEntry.Status.WAITING)
        .exclude(patient_id=appointment.patient_id)
        .select_related("patient")
        .order_by("requested_at", "id")
    )
    for entry in waiting[:20]:
        channel, _ = choose_channel(entry.patient, at=now)
        if channel is None:
            continue
        try:
            plan_attempt(
                entry.patient,
                step=Step.WAITLIST_OFFER,
                window=f"slot-{appointment.pk}",
                channel=channel,
                actor=actor,
                appointment=appointment,
                expires_at=appointment.starts_at - dt.timedelta(hours=2),
            )
        except DomainError:
            continue  # no template for that channel: the next patient
        entry.status = WaitlistEntry.Status.OFFERED
        entry.offered_slot = appointment
        save_with_history(
            entry, actor=actor, reason=f"Freed slot of appointment #{appointment.pk} offered"
        )
        return entry
    return None


@transaction.atomic
def join_waitlist(patient: Patient, *, site: Site, actor) -> WaitlistEntry:
    check_actor(patient.organization_id, actor)
    if site.organization_id != patient.organization_id:
        raise DomainError("Choose a site of the patient's organization")
    entry = WaitlistEntry(
        organization_id=patient.organization_id,
        patient=patient,
        site=site,
        requested_at=timezone.now(),
    )
    save_with_history(entry, actor=actor, reason="Wants an earlier slot")
    return entry
