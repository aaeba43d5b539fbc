"""What the outreach services share: actor checks, channel choice, allowed send times, tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import save_with_history
from carehub.permissions import require_organization_access
from consent.models import Channel, ContactPreference, ContentClass
from consent.policy import TIME_REASONS, ContactFacts, decide, load_facts
from outreach import events
from outreach.models import FollowUp
from patients.models import Patient

# Channels automation may use, in the order tried when the patient stated no preference: the
# portal first (it may carry anything), then text, e-mail, and a letter last (slow, costly).
AUTOMATED_ORDER = (Channel.PORTAL, Channel.SMS, Channel.EMAIL, Channel.LETTER)
# Reasons after which nobody may contact the patient at all: the item goes to a coordinator.
NOBODY_MAY_CONTACT = frozenset({"do_not_contact", "patient_deceased", "patient_inactive"})
# Campaign sends prefer Tuesday to Thursday (domain.md 3.2).
CAMPAIGN_DAYS = frozenset({1, 2, 3})
_STEP = dt.timedelta(minutes=15)
_SEARCH = dt.timedelta(days=8)


def check_actor(organization_id: int, actor) -> None:
    if actor is None:
        raise ValueError(
            "Every outreach change needs an acting user (the system user for automation)"
        )
    require_organization_access(actor, organization_id, what="this patient's outreach")


def facts_for(patient: Patient) -> ContactFacts:
    return load_facts(Patient.objects.filter(pk=patient.pk))[patient.pk]


def hard_reasons(reasons: Iterable[str]) -> list[str]:
    """The reasons that say "never on this channel", not just "not now"."""
    return [r for r in reasons if r not in TIME_REASONS]


def preferred_order(patient: Patient) -> list[str]:
    stated = (
        ContactPreference.objects.filter(patient_id=patient.pk)
        .values_list("preferred_channels", flat=True)
        .first()
        or []
    )
    return [c for c in stated if c in AUTOMATED_ORDER] + [
        c for c in AUTOMATED_ORDER if c not in stated
    ]


def choose_channel(
    patient: Patient, *, at: dt.datetime, facts: ContactFacts | None = None
) -> tuple[str | None, dict[str, list[str]]]:
    """The patient's most preferred automated channel the policy permits (time aside), and the
    hard reasons of every channel it did not pick."""
    facts = facts or facts_for(patient)
    refused: dict[str, list[str]] = {}
    for channel in preferred_order(patient):
        decision = decide(facts, channel=channel, content_class=ContentClass.GENERAL, at=at)
        reasons = hard_reasons(decision.reasons)
        if not reasons:
            return channel, refused
        refused[channel] = reasons
    return None, refused


def phone_permitted(facts: ContactFacts, at: dt.datetime) -> list[str]:
    """Hard reasons an agent may not call (empty: a call is possible at an allowed time)."""
    decision = decide(facts, channel=Channel.PHONE, content_class=ContentClass.GENERAL, at=at)
    return hard_reasons(decision.reasons)


def next_allowed_time(
    facts: ContactFacts,
    *,
    channel: str,
    after: dt.datetime,
    prefer_days: frozenset[int] | None = None,
) -> dt.datetime | None:
    """The first quarter hour from `after` at which only hard reasons (if any) remain: inside
    08:00-21:00 and the preferred window in the patient's zone. With `prefer_days` (weekdays of
    the patient's local calendar) those days are tried first. None when no time in 8 days fits."""
    from consent.policy import _zone

    zone = _zone(facts.timezone)

    def fits(at: dt.datetime, days: frozenset[int] | None) -> bool:
        if days is not None and zone is not None and at.astimezone(zone).weekday() not in days:
            return False
        reasons = decide(facts, channel=channel, content_class=ContentClass.GENERAL, at=at).reasons
        return not (set(reasons) & TIME_REASONS)

    quarter = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=15 - after.minute % 15)
    for days in [prefer_days, None] if prefer_days else [None]:
        if fits(after, days):
            return after
        at = quarter
        while at < after + _SEARCH:
            if fits(at, days):
                return at
            at += _STEP
    return None


def next_business_day(at: dt.datetime) -> dt.datetime:
    """The same time on the next working day (Monday to Friday)."""
    due = at + dt.timedelta(days=1)
    while due.weekday() >= 5:
        due += dt.timedelta(days=1)
    return due


def raise_follow_up(
    patient: Patient,
    *,
    kind: str,
    actor,
    due_at: dt.datetime,
    received_at: dt.datetime | None = None,
    attempt=None,
    appointment=None,
    source_reference: str = "",
    note: str = "",
) -> FollowUp:
    """A task for a person, once per kind and attempt/appointment; published to subscribers."""
    if attempt is not None or appointment is not None:
        existing = FollowUp.objects.filter(
            kind=kind,
            **({"attempt": attempt} if attempt is not None else {"appointment": appointment}),
        ).first()
        if existing is not None:
            return existing
    follow_up = FollowUp(
        organization_id=patient.organization_id,
        patient_id=patient.pk,
        kind=kind,
        attempt=attempt,
        appointment=appointment,
        source_reference=source_reference[:100],
        received_at=received_at or timezone.now(),
        due_at=due_at,
        note=note[:300],
    )
    try:
        with transaction.atomic():
            save_with_history(follow_up, actor=actor, reason=FollowUp.Kind(kind).label)
    except IntegrityError:
        # A concurrent sweep made it first.
        return FollowUp.objects.get(
            kind=kind,
            **({"attempt": attempt} if attempt is not None else {"appointment": appointment}),
        )
    events.publish(
        events.OutreachEvent(
            kind=events.FOLLOW_UP_CREATED,
            organization_id=patient.organization_id,
            patient_id=patient.pk,
            attempt_id=getattr(attempt, "pk", None),
            appointment_id=getattr(appointment, "pk", None),
            follow_up_id=follow_up.pk,
            follow_up_kind=kind,
        )
    )
    return follow_up


@transaction.atomic
def complete_follow_up(follow_up: FollowUp, *, actor, note: str = "") -> FollowUp:
    """Done: the callback was made (its lag is recorded from when the message arrived)."""
    follow_up = FollowUp.objects.select_for_update().get(pk=follow_up.pk)
    check_actor(follow_up.organization_id, actor)
    if follow_up.done_at is not None:
        raise DomainError(f"{follow_up} is already done")
    now = timezone.now()
    follow_up.done_at = now
    follow_up.done_by = actor
    follow_up.lag_seconds = max(0, int((now - follow_up.received_at).total_seconds()))
    if note:
        follow_up.note = note[:300]
    save_with_history(follow_up, actor=actor, reason=note or "Done")
    return follow_up
