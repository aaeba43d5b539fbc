"""The outbox: every automated contact is an attempt row first, then a send that happens once.

    planned --claim: policy says yes--> sending --backend took it--> sent
       |                                   |  \\--backend refused--> failed
       |                                   \\--ambiguous, or sending past the timeout--> unknown
       |--claim: policy says no--> blocked (reasons kept; gaps go to coordinator review)
       |--claim: only "not now" (quiet hours, preferred window)--> planned, later not_before
       \\--no longer needed (gaps closed, appointment booked or over, expired)--> cancelled

`plan_attempt` inserts the row under its unique key (patient, step, window): planning the same
contact twice returns the first row. `send_attempt(attempt_id)` is the django-q2 task body (its
only argument is the id, no PHI): it locks the row, and only a `planned` row goes on, so a
retried or duplicated task, or a second worker, finds `sending`/`sent` and does nothing. The
policy check (`guard_send`) runs in the same transaction that marks the row `sending`; the
backend is called after that commit, outside any transaction; the outcome is recorded in a third.
A worker killed after the hand-over leaves the row `sending`; `expire_stale_sends` turns it
`unknown` and raises a follow-up for a person. Nothing moves an attempt back to `planned`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import get_system_user, save_with_history
from consent.links import create_self_service_link
from consent.models import Channel, ContactPreference, ContentClass
from consent.policy import TIME_REASONS, check_contact, guard_send
from gaps import workflow
from gaps.care_gaps import CareGap, GapState
from outreach import events
from outreach.backends import OutgoingMessage, SendFailed, SendUncertain, get_backend
from outreach.models import (
    STEP_PURPOSE,
    UPCOMING,
    AttemptStatus,
    FollowUp,
    MessageTemplate,
    OutboundMessage,
    Outcome,
    OutreachAttempt,
    Step,
)
from outreach.services.common import (
    check_actor,
    facts_for,
    next_allowed_time,
    raise_follow_up,
)
from outreach.templating import render
from patients.models import Patient

logger = logging.getLogger("outreach.outbox")

GAP_STEPS = frozenset({Step.GAP_FIRST, Step.GAP_SECOND})
APPOINTMENT_STEPS = frozenset({Step.REMINDER_48H, Step.DAY_OF})
# Gap states in which a gap contact is still wanted.
STILL_WANTED = frozenset({GapState.VALIDATED, GapState.OUTREACH})
SECOND_ATTEMPT_DAYS = 14


def language_of(patient: Patient) -> str:
    stated = (
        ContactPreference.objects.filter(patient_id=patient.pk)
        .values_list("preferred_language", flat=True)
        .first()
    )
    return (stated or patient.preferred_language or "en").split("-")[0].lower()


def find_template(patient: Patient, *, step: str, channel: str) -> MessageTemplate:
    purpose = STEP_PURPOSE[step]
    templates = MessageTemplate.objects.filter(
        organization_id=patient.organization_id, purpose=purpose, channel=channel, is_active=True
    )
    language = language_of(patient)
    template = (
        templates.filter(language=language).first() or templates.filter(language="en").first()
    )
    if template is None:
        raise DomainError(
            f"No active {purpose} template for the {channel} channel "
            f"({language} or en); add one under Outreach → Message templates"
        )
    return template


def plan_attempt(
    patient: Patient,
    *,
    step: str,
    window: str,
    channel: str,
    actor,
    gaps: Iterable[CareGap] = (),
    appointment=None,
    not_before: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    content_class: str = ContentClass.GENERAL,
) -> tuple[OutreachAttempt, bool]:
    """The attempt row, created once per (patient, step, window); (row, created)."""
    check_actor(patient.organization_id, actor)
    if step not in Step.values or step == Step.AGENT_CALL:
        raise DomainError(f"{step!r} is not an automated step")
    if channel == Channel.PHONE:
        raise DomainError("An agent's call is logged by the agent, not sent")
    template = find_template(patient, step=step, channel=channel)
    if template.content_class == ContentClass.CLINICAL:
        content_class = ContentClass.CLINICAL
    now = timezone.now()
    attempt = OutreachAttempt(
        organization_id=patient.organization_id,
        patient_id=patient.pk,
        step=step,
        window=window[:40],
        channel=channel,
        content_class=content_class,
        appointment=appointment,
        template=template,
        status=AttemptStatus.PLANNED,
        automated=True,
        actor=actor,
        planned_at=now,
        not_before=not_before or now,
        expires_at=expires_at,
    )
    try:
        with transaction.atomic():
            save_with_history(attempt, actor=actor, reason=f"Planned: {Step(step).label}")
    except IntegrityError:
        existing = OutreachAttempt.objects.get(patient_id=patient.pk, step=step, window=window)
        return existing, False
    gaps = list(gaps)
    if gaps:
        attempt.gaps.set(gaps)
    if attempt.not_before <= now:
        enqueue_on_commit(attempt.pk)
    return attempt, True


def enqueue_on_commit(attempt_id: int) -> None:
    def enqueue() -> None:
        from django_q.tasks import async_task

        async_task("outreach.tasks.send_attempt", attempt_id, task_name=f"send-{attempt_id}")

    transaction.on_commit(enqueue)


def _render_values(attempt: OutreachAttempt, *, actor) -> dict[str, str]:
    patient = attempt.patient
    organization = patient.organization
    values = {
        "patient_first_name": patient.given_name,
        "practice_name": organization.name,
        "practice_phone": organization.contact_phone,
    }
    appointment = attempt.appointment
    if appointment is not None:
        from consent.policy import _zone

        local = appointment.starts_at.astimezone(_zone(appointment.site.timezone) or dt.UTC)
        values["appointment_time"] = local.strftime("%A %d %B, %H:%M")
        values["site_name"] = appointment.site.name
        if appointment.provider is not None:
            values["provider_name"] = (
                f"{appointment.provider.given_name} {appointment.provider.family_name}"
            )
    template = attempt.template
    if template is not None and "preferences_link" in f"{template.subject}{template.body}":
        _, token = create_self_service_link(patient, actor=actor)
        base = settings.CAREHUB_PUBLIC_URL.rstrip("/")
        values["preferences_link"] = f"{base}/preferences/{token}/"
    return values


def _address(attempt: OutreachAttempt) -> str:
    patient = attempt.patient
    if attempt.channel == Channel.EMAIL:
        return patient.email
    if attempt.channel in (Channel.SMS, Channel.VOICE):
        from patients.phones import normalize_phone

        return normalize_phone(patient.phone) or ""
    if attempt.channel == Channel.LETTER:
        return ", ".join(
            part
            for part in (
                patient.address_line,
                patient.city,
                f"{patient.state} {patient.postal_code}".strip(),
            )
            if part
        )
    return f"portal:{patient.pk}"


def no_longer_needed(attempt: OutreachAttempt, now: dt.datetime) -> str:
    """Why the planned contact should not go out any more ("" when it should)."""
    if attempt.expires_at is not None and now >= attempt.expires_at:
        return "its time has passed"
    if attempt.step in GAP_STEPS:
        states = set(attempt.gaps.values_list("state", flat=True))
        if not states & STILL_WANTED:
            return "the gaps are no longer in outreach (closed, scheduled or under review)"
    if attempt.step in APPOINTMENT_STEPS and attempt.appointment.status not in UPCOMING:
        return f"the appointment is {attempt.appointment.get_status_display().lower()}"
    if attempt.step == Step.NO_SHOW_RECOVERY:
        from outreach.models import Appointment

        rebooked = Appointment.objects.filter(
            patient_id=attempt.patient_id, status__in=UPCOMING, booked_at__gt=attempt.planned_at
        ).exists()
        if rebooked:
            return "the patient booked again"
    return ""


def _finish(attempt: OutreachAttempt, *, actor, reason: str, fields: list[str]) -> None:
    save_with_history(attempt, actor=actor, reason=reason, update_fields=fields)
    if attempt.status not in (AttemptStatus.PLANNED, AttemptStatus.SENDING):
        events.publish(
            events.OutreachEvent(
                kind=events.ATTEMPT_OUTCOME,
                organization_id=attempt.organization_id,
                patient_id=attempt.patient_id,
                attempt_id=attempt.pk,
                status=attempt.status,
            )
        )


def send_attempt(attempt_id: int, *, now: dt.datetime | None = None) -> str:
    """Claim, check, send once, record. Returns what happened (the task's result; no PHI)."""
    actor = get_system_user()
    with transaction.atomic():
        attempt = (
            OutreachAttempt.objects.select_for_update(of=("self",))
            .select_related("patient", "patient__organization", "template", "appointment")
            .filter(pk=attempt_id)
            .first()
        )
        if attempt is None:
            return "missing"
        if attempt.status != AttemptStatus.PLANNED:
            return f"already {attempt.status}"  # a retried or duplicated task stops here
        now = now or timezone.now()
        if attempt.not_before > now:
            return "not due"
        stop = no_longer_needed(attempt, now)
        if stop:
            attempt.status = AttemptStatus.CANCELLED
            attempt.outcome_at = now
            _finish(
                attempt,
                actor=actor,
                reason=f"Not sent: {stop}",
                fields=["status", "outcome_at"],
            )
            return "cancelled"
        patient = attempt.patient
        planning = check_contact(
            patient, channel=attempt.channel, content_class=attempt.content_class, at=now
        )
        if planning.reasons and set(planning.reasons) <= TIME_REASONS:
            later = next_allowed_time(facts_for(patient), channel=attempt.channel, after=now)
            if later is not None and (attempt.expires_at is None or later < attempt.expires_at):
                attempt.not_before = later
                save_with_history(
                    attempt,
                    actor=actor,
                    reason=f"Waits for allowed hours ({', '.join(planning.reasons)})",
                    update_fields=["not_before"],
                )
                return "deferred"
        decision = guard_send(
            patient,
            channel=attempt.channel,
            content_class=attempt.content_class,
            actor=actor,
            purpose=f"outreach.attempt:{attempt.pk}",
            at=now,
        )
        if not decision.allowed:
            attempt.status = AttemptStatus.BLOCKED
            attempt.outcome = Outcome.BLOCKED_BY_POLICY
            attempt.blocked_reasons = decision.reasons
            attempt.outcome_at = now
            _finish(
                attempt,
                actor=actor,
                reason=f"Blocked by policy: {', '.join(decision.reasons)}",
                fields=["status", "outcome", "blocked_reasons", "outcome_at"],
            )
            _after_block(attempt, decision.reasons, actor=actor)
            return "blocked"
        values = _render_values(attempt, actor=actor)
        attempt.rendered_subject = render(attempt.template.subject, values)[:200]
        attempt.rendered_text = render(attempt.template.body, values)
        attempt.status = AttemptStatus.SENDING
        attempt.claimed_at = now
        _finish(
            attempt,
            actor=actor,
            reason="Handed to the channel",
            fields=["status", "claimed_at", "rendered_subject", "rendered_text"],
        )
        message = OutgoingMessage(
            attempt_id=attempt.pk,
            organization_id=attempt.organization_id,
            patient_id=attempt.patient_id,
            channel=attempt.channel,
            to=_address(attempt),
            subject=attempt.rendered_subject,
            body=attempt.rendered_text,
        )
    # Outside the transaction: the claim is committed, whatever happens to this worker now.
    try:
        receipt = get_backend(message.channel).send(message)
    except SendFailed as error:
        return _record_outcome(attempt_id, status=AttemptStatus.FAILED, error=str(error))
    except SendUncertain as error:
        return _record_outcome(attempt_id, status=AttemptStatus.UNKNOWN, error=str(error))
    except Exception as error:  # the backend's own bug: we cannot tell whether it sent
        logger.exception("outreach backend error on attempt %s", attempt_id)
        return _record_outcome(
            attempt_id, status=AttemptStatus.UNKNOWN, error=f"backend error {type(error).__name__}"
        )
    return _record_outcome(
        attempt_id,
        status=AttemptStatus.SENT,
        provider_message_id=receipt.provider_message_id,
        delivered=receipt.delivered,
    )


@transaction.atomic
def _record_outcome(
    attempt_id: int,
    *,
    status: str,
    error: str = "",
    provider_message_id: str = "",
    delivered: bool = False,
) -> str:
    actor = get_system_user()
    attempt = OutreachAttempt.objects.select_for_update().get(pk=attempt_id)
    if attempt.status not in (AttemptStatus.SENDING, AttemptStatus.UNKNOWN):
        return f"already {attempt.status}"
    now = timezone.now()
    attempt.status = status
    attempt.outcome_at = now
    attempt.error = error[:300]
    fields = ["status", "outcome_at", "error"]
    if status == AttemptStatus.SENT:
        attempt.attempted_at = now
        attempt.provider_message_id = provider_message_id[:100]
        fields += ["attempted_at", "provider_message_id"]
        if delivered:
            attempt.outcome = Outcome.DELIVERED
            fields.append("outcome")
    elif status == AttemptStatus.FAILED:
        attempt.outcome = Outcome.FAILED
        fields.append("outcome")
    _finish(
        attempt,
        actor=actor,
        reason=f"Send {status}" + (f": {error}" if error else ""),
        fields=fields,
    )
    if status == AttemptStatus.UNKNOWN:
        raise_follow_up(
            attempt.patient,
            kind=FollowUp.Kind.UNKNOWN_SEND,
            actor=actor,
            due_at=now,
            attempt=attempt,
            note="Unknown whether the channel took the message; check before contacting again",
        )
    if status == AttemptStatus.SENT and attempt.step in GAP_STEPS:
        _due_next_attempt(attempt, actor=actor, sent_on=timezone.localdate())
    return status


def _due_next_attempt(attempt: OutreachAttempt, *, actor, sent_on: dt.date) -> None:
    """After a gap contact: the next step is the second attempt (or review) in 14 days."""
    due = sent_on + dt.timedelta(days=SECOND_ATTEMPT_DAYS)
    for gap in attempt.gaps.filter(state=GapState.OUTREACH):
        workflow.set_next_attempt(
            gap,
            actor=actor,
            due=due,
            reason=f"{Step(attempt.step).label} sent ({attempt.get_channel_display()})",
        )


def _after_block(attempt: OutreachAttempt, reasons: list[str], *, actor) -> None:
    """A blocked gap contact stops automation: the gaps go to a coordinator with the reasons."""
    if attempt.step not in GAP_STEPS:
        return
    reason = f"Automated outreach blocked ({', '.join(reasons)}); a coordinator decides"
    flagged = []
    for gap in attempt.gaps.filter(state__in=STILL_WANTED):
        workflow.flag_for_review(gap, actor=actor, reason=reason)
        flagged.append(gap.pk)
    if flagged:
        events.publish(
            events.OutreachEvent(
                kind=events.GAPS_TO_REVIEW,
                organization_id=attempt.organization_id,
                patient_id=attempt.patient_id,
                attempt_id=attempt.pk,
            )
        )


def expire_stale_sends(*, now: dt.datetime | None = None) -> int:
    """Attempts `sending` past the timeout become `unknown`; a person checks (never resent)."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.CAREHUB_OUTREACH_SENDING_TIMEOUT_SECONDS)
    stale = list(
        OutreachAttempt.objects.filter(
            status=AttemptStatus.SENDING, claimed_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )
    count = 0
    for attempt_id in stale:
        with transaction.atomic():
            attempt = (
                OutreachAttempt.objects.select_for_update(skip_locked=True)
                .filter(pk=attempt_id, status=AttemptStatus.SENDING)
                .first()
            )
            if attempt is None:
                continue
            sent = OutboundMessage.objects.filter(attempt_id=attempt.pk).first()
            attempt.status = AttemptStatus.UNKNOWN
            attempt.outcome_at = now
            attempt.error = (
                "worker stopped after the hand-over; the channel has the message"
                if sent is not None
                else "worker stopped during the send; the outcome is unknown"
            )
            _finish(
                attempt,
                actor=get_system_user(),
                reason="Still sending past the timeout: outcome unknown",
                fields=["status", "outcome_at", "error"],
            )
            raise_follow_up(
                attempt.patient,
                kind=FollowUp.Kind.UNKNOWN_SEND,
                actor=get_system_user(),
                due_at=now,
                attempt=attempt,
                note="A send did not finish; check with the channel before contacting again",
            )
            count += 1
    return count


def due_attempt_ids(*, now: dt.datetime | None = None, limit: int = 5000) -> list[int]:
    now = now or timezone.now()
    return list(
        OutreachAttempt.objects.filter(status=AttemptStatus.PLANNED, not_before__lte=now)
        .order_by("not_before", "id")
        .values_list("pk", flat=True)[:limit]
    )


def send_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due planned attempt in this process (tests, and a worker's dispatch task)."""
    counts: dict[str, int] = {}
    for attempt_id in due_attempt_ids(now=now):
        result = send_attempt(attempt_id, now=now)
        counts[result] = counts.get(result, 0) + 1
    return counts


def enqueue_due(*, now: dt.datetime | None = None) -> int:
    """The dispatcher: one send task per due attempt (duplicates are harmless: see the claim)."""
    from django_q.tasks import async_task

    ids = due_attempt_ids(now=now)
    for attempt_id in ids:
        async_task("outreach.tasks.send_attempt", attempt_id, task_name=f"send-{attempt_id}")
    return len(ids)


@transaction.atomic
def record_delivery_status(provider_message_id: str, *, status: str, at: dt.datetime) -> bool:
    """The SMS gateway's delivery report; False when no attempt has that id."""
    attempt = (
        OutreachAttempt.objects.select_for_update()
        .filter(provider_message_id=provider_message_id)
        .first()
    )
    if attempt is None:
        return False
    actor = get_system_user()
    message = (
        OutboundMessage.objects.select_for_update()
        .filter(provider_message_id=provider_message_id)
        .first()
    )
    if status == "delivered":
        attempt.outcome = Outcome.DELIVERED
        if message is not None:
            message.delivery = OutboundMessage.Delivery.DELIVERED
    else:
        attempt.status = AttemptStatus.FAILED
        attempt.outcome = Outcome.FAILED
        if message is not None:
            message.delivery = OutboundMessage.Delivery.FAILED
    attempt.outcome_at = at
    _finish(
        attempt,
        actor=actor,
        reason=f"Delivery report: {status}",
        fields=["status", "outcome", "outcome_at"],
    )
    if message is not None:
        save_with_history(
            message, actor=actor, reason=f"Delivery report: {status}", update_fields=["delivery"]
        )
    return True
