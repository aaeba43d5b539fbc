"""Starting outreach on a gap, and an agent's call logged in one step.

`start_outreach` is what "Outreach started" does on a gap: the channel is named and the contact
policy decides. A patient nobody may contact (do-not-contact, deceased or inactive, or no channel
at all) goes to coordinator review with the reasons instead; a refused channel when another is
open is refused with the reasons and the open channels. An automated channel plans the first
contact (one covering all the patient's gaps in outreach); the phone means an agent calls.

`log_call` records an agent's call with everything domain.md 4 asks (outcome, response, next
step, clinical concern) and its consequences in the same transaction: the gaps move (outreach,
scheduled with the appointment booked in the same step, declined), a clinical concern escalates
to a coordinator at once, an opt-out is recorded as the patient's preference. The call itself
goes through the policy first (calling hours, preferred window, do-not-contact, phone opt-out);
a refused call is recorded as blocked and changes nothing else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import save_with_history
from consent.models import ChangePath, Channel, ContentClass
from consent.policy import REASONS, ContactRefused, guard_send
from consent.services import update_preferences
from gaps import workflow
from gaps.care_gaps import CareGap, GapState
from outreach import events
from outreach.models import (
    AttemptStatus,
    FollowUp,
    Outcome,
    OutreachAttempt,
    Step,
)
from outreach.services.common import (
    NOBODY_MAY_CONTACT,
    check_actor,
    choose_channel,
    facts_for,
    phone_permitted,
    raise_follow_up,
)
from outreach.services.outbox import plan_attempt

# Gap states from which outreach may start (the workflow table's sources).
STARTABLE = frozenset(workflow.BY_SERVICE["record_outreach_started"].source)
# Gaps an agent's call is about.
CALLABLE = STARTABLE | {GapState.OUTREACH, GapState.SCHEDULED}


@dataclass
class StartResult:
    state: str
    message: str
    attempt: OutreachAttempt | None = None
    reasons: list[str] = field(default_factory=list)


def _reason_text(reasons: list[str]) -> str:
    return " ".join(REASONS.get(code, code) for code in reasons)


def _open_gaps_of(patient_id: int, states) -> list[CareGap]:
    return list(CareGap.objects.filter(patient_id=patient_id, state__in=states).order_by("pk"))


def start_outreach(
    gap: CareGap,
    *,
    actor,
    channel: str,
    next_attempt_on: dt.date | None = None,
    reason: str = "",
) -> StartResult:
    """ "Outreach started" on `channel`, through the contact policy (see the module docstring)."""
    check_actor(gap.organization_id, actor)
    if channel not in Channel.values:
        raise DomainError(f"Name the channel: one of {', '.join(Channel.values)}")
    now = timezone.now()
    patient = gap.patient
    facts = facts_for(patient)
    best, refused = choose_channel(patient, at=now, facts=facts)
    phone_reasons = phone_permitted(facts, now)
    everything = sorted({code for codes in refused.values() for code in codes} | set(phone_reasons))
    nobody = NOBODY_MAY_CONTACT & set(everything) or (best is None and phone_reasons)
    if nobody:
        with transaction.atomic():
            workflow.flag_for_review(
                gap,
                actor=actor,
                reason=f"Nobody may contact the patient ({', '.join(everything)}); "
                "a coordinator decides",
            )
            events.publish(
                events.OutreachEvent(
                    kind=events.GAPS_TO_REVIEW,
                    organization_id=gap.organization_id,
                    patient_id=patient.pk,
                )
            )
        return StartResult(
            state=GapState.NEEDS_REVIEW,
            message=f"Not started: {_reason_text(everything)} The gap went to coordinator review.",
            reasons=everything,
        )
    with transaction.atomic():
        try:
            workflow.record_outreach_started(
                gap,
                actor=actor,
                channel=channel,
                next_attempt_on=next_attempt_on,
                reason=reason,
            )
        except ContactRefused as error:
            open_channels = [c for c in Channel.values if c not in refused and c != channel]
            if phone_reasons:
                open_channels = [c for c in open_channels if c != Channel.PHONE]
            raise ContactRefused(
                f"{error} Channels open for this patient: {', '.join(open_channels) or 'none'}.",
                error.reasons,
            ) from None
        attempt = None
        if channel != Channel.PHONE:
            gaps = _open_gaps_of(patient.pk, {GapState.OUTREACH})
            attempt, _ = plan_attempt(
                patient,
                step=Step.GAP_FIRST,
                window=str(gap.period_end.year),
                channel=channel,
                actor=actor,
                gaps=gaps,
            )
    return StartResult(
        state=GapState.OUTREACH,
        message=(
            f"Outreach started by {Channel(channel).label.lower()}"
            + (f"; contact #{attempt.pk} planned" if attempt else "; log the call when made")
        ),
        attempt=attempt,
    )


@dataclass(frozen=True)
class Booking:
    site_id: int
    starts_at: dt.datetime
    provider_id: int | None = None
    kind: str = "visit"


@transaction.atomic
def log_call(
    patient,
    *,
    actor,
    outcome: str,
    gaps: list[CareGap] | None = None,
    response: str = "",
    next_step: str = "",
    next_step_due: dt.date | None = None,
    clinical_concern: bool = False,
    booking: Booking | None = None,
    at: dt.datetime | None = None,
) -> OutreachAttempt:
    """One agent's call, recorded with its consequences (module docstring). A call the policy
    refuses is recorded as blocked (with the reasons) and raises nothing: read `status`."""
    from outreach.services.appointments import book_appointment

    check_actor(patient.organization_id, actor)
    if outcome not in Outcome.values or outcome in (Outcome.DELIVERED, Outcome.FAILED):
        raise DomainError(f"Unknown call outcome {outcome!r}")
    if outcome == Outcome.REACHED_SCHEDULED and booking is None:
        raise DomainError("Reached and scheduled: give the site and time of the appointment")
    if outcome != Outcome.REACHED_SCHEDULED and booking is not None:
        raise DomainError(
            "An appointment is booked only when the outcome is 'reached and scheduled'"
        )
    if next_step_due is not None and next_step_due < timezone.localdate():
        raise DomainError("The next step cannot be due in the past")
    now = at or timezone.now()
    gaps = list(gaps) if gaps is not None else _open_gaps_of(patient.pk, CALLABLE)
    foreign = [g.pk for g in gaps if g.patient_id != patient.pk]
    if foreign:
        raise DomainError(f"Gap(s) {foreign} are not this patient's")
    attempt = OutreachAttempt(
        organization_id=patient.organization_id,
        patient_id=patient.pk,
        step=Step.AGENT_CALL,
        window=f"call-{now.isoformat(timespec='microseconds')}"[:40],
        channel=Channel.PHONE,
        content_class=ContentClass.GENERAL,
        automated=False,
        actor=actor,
        planned_at=now,
        not_before=now,
        attempted_at=now,
        outcome_at=now,
    )
    decision = guard_send(
        patient,
        channel=Channel.PHONE,
        content_class=ContentClass.GENERAL,
        actor=actor,
        purpose="outreach.agent_call",
        at=now,
    )
    if not decision.allowed:
        attempt.status = AttemptStatus.BLOCKED
        attempt.outcome = Outcome.BLOCKED_BY_POLICY
        attempt.blocked_reasons = decision.reasons
        save_with_history(
            attempt,
            actor=actor,
            reason=f"Call refused by policy: {', '.join(decision.reasons)}",
        )
        attempt.gaps.set(gaps)
        return attempt
    attempt.status = AttemptStatus.LOGGED
    attempt.outcome = outcome
    attempt.response = response.strip()
    attempt.next_step = next_step.strip()[:200]
    attempt.next_step_due = next_step_due
    attempt.clinical_concern = clinical_concern
    save_with_history(attempt, actor=actor, reason=f"Call: {Outcome(outcome).label}")
    attempt.gaps.set(gaps)
    label = Outcome(outcome).label.lower()
    for gap in gaps:
        if gap.state in STARTABLE and outcome != Outcome.OPTED_OUT:
            workflow.record_outreach_started(
                gap,
                actor=actor,
                channel=Channel.PHONE,
                next_attempt_on=next_step_due,
                reason=f"Call: {label}",
            )
            gap.refresh_from_db()
        elif gap.state == GapState.OUTREACH and next_step_due is not None:
            workflow.set_next_attempt(gap, actor=actor, due=next_step_due, reason=f"Call: {label}")
    if outcome == Outcome.REACHED_SCHEDULED:
        book_appointment(
            patient,
            actor=actor,
            site_id=booking.site_id,
            provider_id=booking.provider_id,
            starts_at=booking.starts_at,
            kind=booking.kind,
            gaps=[g for g in gaps if g.state in (GapState.OUTREACH, GapState.SCHEDULED)],
            attempt=attempt,
        )
    elif outcome == Outcome.REACHED_DECLINED:
        for gap in CareGap.objects.filter(pk__in=[g.pk for g in gaps], state=GapState.OUTREACH):
            workflow.mark_declined(gap, actor=actor, reason=response or "declined on the call")
    elif outcome == Outcome.OPTED_OUT:
        preference = facts_for(patient).preference
        preference_channels = set(preference.opted_out_channels) if preference else set()
        update_preferences(
            patient,
            actor=actor,
            path=ChangePath.ADMIN,
            reason="The patient asked on a call not to be called",
            opted_out_channels=sorted(preference_channels | {Channel.PHONE.value}),
        )
    if clinical_concern:
        raise_follow_up(
            patient,
            kind=FollowUp.Kind.CLINICAL_CONCERN,
            actor=actor,
            due_at=now,
            attempt=attempt,
            note="Clinical concern raised on a call: a coordinator follows up now",
        )
    return attempt


def send_preferences_link(patient, *, actor) -> OutreachAttempt:
    """The patient's self-service preferences link, sent on their preferred permitted channel
    (the link is made at send time, so it is fresh when it arrives)."""
    from outreach.services.common import next_allowed_time

    check_actor(patient.organization_id, actor)
    now = timezone.now()
    facts = facts_for(patient)
    channel, refused = choose_channel(patient, at=now, facts=facts)
    if channel is None:
        reasons = sorted({code for codes in refused.values() for code in codes})
        raise ContactRefused(f"No channel may carry the link: {_reason_text(reasons)}", reasons)
    attempt, _ = plan_attempt(
        patient,
        step=Step.SELF_SERVICE_LINK,
        window=f"link-{now:%Y%m%d%H%M%S}",
        channel=channel,
        actor=actor,
        not_before=next_allowed_time(facts, channel=channel, after=now) or now,
    )
    return attempt
