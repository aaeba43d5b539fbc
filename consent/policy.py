"""The contact policy: may this patient be contacted on this channel, with this content, now?

Every send path asks `check_contact` (or `check_contacts` for a batch) when planning, and
`guard_send` inside the transaction that records the send, so a preference change committed
after planning still wins. The rules (domain.md 3.2), each a stable reason code:

- the patient is deceased or no longer active: nothing (`patient_deceased`, `patient_inactive`);
- do-not-contact: nothing, the item goes to coordinator review (`do_not_contact`);
- portal-only: every channel but the portal is blocked (`portal_only`);
- clinical content goes only through the secure portal (`clinical_content_requires_portal`);
- a channel the patient opted out of is blocked (`<channel>_opted_out`);
- automated texts and automated voice calls need TCPA consent in force and a dialable number
  (`no_tcpa_consent`, `no_phone_number`); agent-made calls need only the number;
- e-mail needs e-mail consent in force and an address (`no_email_consent`, `no_email_address`);
- portal messages need portal enrollment (`no_portal_enrollment`), letters an address
  (`no_postal_address`);
- automated channels (portal, SMS, e-mail, voice) and agents' calls only 08:00-21:00 in the
  patient's time zone (`quiet_hours`; the TCPA calling hours bind a person dialling too);
- automated channels and agent calls only inside the patient's preferred days and hours when
  they gave them (`outside_preferred_window`).
A decision lists every reason that applies, in the order of REASONS, so the agent sees all of
them at once. Unknown channels or content classes are an error, never a default of "allowed".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import save_with_history
from consent.models import (
    BlockedSend,
    ChangePath,
    Channel,
    Consent,
    ContactPreference,
    ContentClass,
)
from patients.models import Patient
from patients.phones import normalize_phone

REASONS: dict[str, str] = {
    "patient_deceased": "The patient is recorded as deceased.",
    "patient_inactive": "The patient is no longer active with this organization.",
    "do_not_contact": "The patient asked not to be contacted; the item goes to coordinator review.",
    "portal_only": "The patient wants all contact through the patient portal.",
    "clinical_content_requires_portal": (
        "Clinical content (a condition, test, result or medication) may only go through the "
        "secure patient portal."
    ),
    "portal_opted_out": "The patient opted out of portal messages.",
    "sms_opted_out": "The patient opted out of text messages.",
    "email_opted_out": "The patient opted out of e-mail.",
    "voice_opted_out": "The patient opted out of automated calls.",
    "phone_opted_out": "The patient opted out of phone calls.",
    "letter_opted_out": "The patient opted out of letters.",
    "no_tcpa_consent": "No TCPA consent for automated texts and calls is in force.",
    "no_email_consent": "No e-mail consent is in force.",
    "no_portal_enrollment": "The patient is not enrolled in the patient portal.",
    "no_phone_number": "The phone number on file is missing or cannot be dialed.",
    "no_email_address": "There is no e-mail address on file.",
    "no_postal_address": "There is no postal address on file.",
    "unknown_timezone": "The patient's time zone is not a known time zone.",
    "quiet_hours": "Contact is allowed only 08:00-21:00 in the patient's time zone.",
    "outside_preferred_window": "It is outside the days and hours the patient prefers.",
}

AUTOMATED_CHANNELS = frozenset({Channel.PORTAL, Channel.SMS, Channel.EMAIL, Channel.VOICE})
WINDOWED_CHANNELS = AUTOMATED_CHANNELS | {Channel.PHONE}
# Reasons that only say "not now": a planned send waits for the next allowed time instead.
TIME_REASONS = frozenset({"quiet_hours", "outside_preferred_window"})
QUIET_HOURS_END = dt.time(21, 0)
QUIET_HOURS_START = dt.time(8, 0)
_CHANNEL_CONSENT = {
    Channel.SMS: (Consent.Kind.SMS_TCPA, "no_tcpa_consent"),
    Channel.VOICE: (Consent.Kind.SMS_TCPA, "no_tcpa_consent"),
    Channel.EMAIL: (Consent.Kind.EMAIL, "no_email_consent"),
    Channel.PORTAL: (Consent.Kind.PORTAL, "no_portal_enrollment"),
}
_CONSENT_KINDS_THAT_GATE = {kind for kind, _ in _CHANNEL_CONSENT.values()}


class PolicyInputError(DomainError):
    pass


class ContactRefused(DomainError):
    """The policy says no; `reasons` are its codes (the message lists them for a person)."""

    status_code = 409

    def __init__(self, message: str, reasons: list[str]):
        super().__init__(message)
        self.reasons = list(reasons)


@dataclass(frozen=True)
class Decision:
    channel: str
    content_class: str
    at: dt.datetime
    reasons: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def messages(self) -> list[str]:
        return [REASONS[code] for code in self.reasons]

    @property
    def reason_pairs(self) -> list[tuple[str, str]]:
        return [(code, REASONS[code]) for code in self.reasons]

    def as_dict(self) -> dict:
        return {
            "channel": self.channel,
            "content_class": self.content_class,
            "at": self.at.isoformat(),
            "allowed": self.allowed,
            "reasons": list(self.reasons),
            "messages": self.messages,
        }


@dataclass(frozen=True)
class PreferenceFacts:
    do_not_contact: bool
    portal_only: bool
    opted_out_channels: list[str]
    contact_days: list[int]
    contact_start: dt.time | None
    contact_end: dt.time | None


@dataclass(frozen=True)
class ConsentFacts:
    """A granted consent of a kind that gates a channel."""

    kind: str
    effective_at: dt.datetime
    expires_at: dt.datetime | None

    def in_force(self, at: dt.datetime) -> bool:
        return self.effective_at <= at and (self.expires_at is None or at < self.expires_at)


@dataclass(frozen=True)
class ContactFacts:
    """What the policy needs to know about one patient: plain values, loaded in bulk."""

    status: str
    phone: str
    email: str
    has_postal_address: bool
    timezone: str
    preference: PreferenceFacts | None
    consents: tuple[ConsentFacts, ...]


def validate_request(channel: str, content_class: str, at: dt.datetime) -> None:
    if channel not in Channel.values:
        raise PolicyInputError(
            f"Unknown channel {channel!r}; expected one of {', '.join(Channel.values)}"
        )
    if content_class not in ContentClass.values:
        raise PolicyInputError(
            f"Unknown content class {content_class!r}; expected one of "
            f"{', '.join(ContentClass.values)}"
        )
    if not isinstance(at, dt.datetime) or timezone.is_naive(at):
        raise PolicyInputError("The time of contact must be an aware datetime")


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def decide(facts: ContactFacts, *, channel: str, content_class: str, at: dt.datetime) -> Decision:
    """The rules themselves, on facts already loaded (no queries)."""
    found: set[str] = set()
    preference = facts.preference

    if facts.status == Patient.Status.DECEASED:
        found.add("patient_deceased")
    elif facts.status != Patient.Status.ACTIVE:
        found.add("patient_inactive")

    if preference is not None:
        if preference.do_not_contact:
            found.add("do_not_contact")
        if preference.portal_only and channel != Channel.PORTAL:
            found.add("portal_only")
        if channel in preference.opted_out_channels:
            found.add(f"{channel}_opted_out")

    if content_class == ContentClass.CLINICAL and channel != Channel.PORTAL:
        found.add("clinical_content_requires_portal")

    if channel in (Channel.SMS, Channel.VOICE, Channel.PHONE) and not normalize_phone(facts.phone):
        found.add("no_phone_number")
    if channel == Channel.EMAIL and not facts.email:
        found.add("no_email_address")
    if channel == Channel.LETTER and not facts.has_postal_address:
        found.add("no_postal_address")
    if channel in _CHANNEL_CONSENT:
        kind, missing = _CHANNEL_CONSENT[channel]
        if not any(c.kind == kind and c.in_force(at) for c in facts.consents):
            found.add(missing)

    if channel in WINDOWED_CHANNELS:
        zone = _zone(facts.timezone)
        if zone is None:
            found.add("unknown_timezone")
        else:
            local = at.astimezone(zone)
            if not (QUIET_HOURS_START <= local.time() < QUIET_HOURS_END):
                found.add("quiet_hours")
            if preference is not None and not _inside_preferred_window(preference, local):
                found.add("outside_preferred_window")

    return Decision(
        channel=channel,
        content_class=content_class,
        at=at,
        reasons=[code for code in REASONS if code in found],
    )


def _inside_preferred_window(preference: PreferenceFacts, local: dt.datetime) -> bool:
    if preference.contact_days and local.weekday() not in preference.contact_days:
        return False
    start, end = preference.contact_start, preference.contact_end
    if start is not None and end is not None:
        return start <= local.time().replace(tzinfo=None) < end
    return True


_PATIENT_COLUMNS = ("pk", "status", "phone", "email", "address_line", "postal_code", "timezone")
_PREFERENCE_COLUMNS = tuple(
    f"contact_preference__{name}"
    for name in ("id", "timezone", *(f.name for f in fields(PreferenceFacts)))
)


def load_facts(patients: QuerySet[Patient]) -> dict[int, ContactFacts]:
    """The facts of every patient in the queryset: two queries, plain values, no model objects.

    (Building model instances for 10,000 patients, their preferences and consents costs several
    times more than the rules themselves.)
    """
    consents: dict[int, list[ConsentFacts]] = {}
    granted = Consent.objects.filter(
        patient__in=patients.values("pk"),
        kind__in=_CONSENT_KINDS_THAT_GATE,
        status=Consent.Status.GRANTED,
    ).values_list("patient_id", "kind", "effective_at", "expires_at")
    for patient_id, kind, effective_at, expires_at in granted:
        consents.setdefault(patient_id, []).append(ConsentFacts(kind, effective_at, expires_at))
    facts = {}
    for row in patients.values_list(*_PATIENT_COLUMNS, *_PREFERENCE_COLUMNS):
        pk, status, phone, email, address_line, postal_code, patient_zone = row[:7]
        preference_id, preference_zone, *preference_values = row[7:]
        facts[pk] = ContactFacts(
            status=status,
            phone=phone,
            email=email,
            has_postal_address=bool(address_line and postal_code),
            timezone=preference_zone or patient_zone,
            preference=None if preference_id is None else PreferenceFacts(*preference_values),
            consents=tuple(consents.get(pk, ())),
        )
    return facts


def _decide_one(patient: Patient, *, channel: str, content_class: str, at) -> Decision:
    facts = load_facts(Patient.objects.filter(pk=patient.pk))[patient.pk]
    return decide(facts, channel=channel, content_class=content_class, at=at)


def check_contact(
    patient: Patient, *, channel: str, content_class: str, at: dt.datetime
) -> Decision:
    """The decision for one patient, from the patient, preferences and consents as stored now."""
    validate_request(channel, content_class, at)
    return _decide_one(patient, channel=channel, content_class=content_class, at=at)


def check_contacts(
    patients: QuerySet[Patient] | Iterable[Patient],
    *,
    channel: str,
    content_class: str,
    at: dt.datetime,
) -> dict[int, Decision]:
    """Decisions for many patients: two queries for a queryset, whatever its size."""
    validate_request(channel, content_class, at)
    if not isinstance(patients, QuerySet):
        patients = Patient.objects.filter(pk__in=[patient.pk for patient in patients])
    return {
        pk: decide(facts, channel=channel, content_class=content_class, at=at)
        for pk, facts in load_facts(patients).items()
    }


def lock_preferences(patient: Patient, *, actor, path: str = ChangePath.SYSTEM):
    """Lock the patient's preference row (creating the default row on first use).

    Every consent change, preference change and send takes this lock first, so they serialize
    per patient: a send waits for a change in flight and then sees it.
    """
    try:
        return ContactPreference.objects.select_for_update().get(patient_id=patient.pk)
    except ContactPreference.DoesNotExist:
        pass
    preference = ContactPreference(
        organization_id=patient.organization_id,
        patient_id=patient.pk,
        path=path,
        changed_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            if actor is None:
                preference._history_user = None
                preference._change_reason = "Default contact preferences"
                preference.save()
            else:
                save_with_history(preference, actor=actor, reason="Default contact preferences")
    except IntegrityError:
        # Another transaction created it first; take its row (and wait for its lock).
        return ContactPreference.objects.select_for_update().get(patient_id=patient.pk)
    return preference


def guard_send(
    patient: Patient,
    *,
    channel: str,
    content_class: str,
    actor,
    purpose: str = "",
    at: dt.datetime | None = None,
) -> Decision:
    """Re-check the policy at send time, inside the caller's transaction that records the send.

    Locks the patient's preference row, re-reads the patient, the preferences and the consents
    as committed now, and when the answer is no records a BlockedSend with the reasons (in the
    same transaction, so the caller commits it together with its own record of the attempt).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("guard_send must run inside the transaction that records the send")
    if actor is None:
        raise ValueError("guard_send needs the sending user (the system user for automation)")
    at = at or timezone.now()
    validate_request(channel, content_class, at)
    lock_preferences(patient, actor=actor)
    # Read after the lock: under READ COMMITTED each statement sees what committed before it.
    decision = _decide_one(patient, channel=channel, content_class=content_class, at=at)
    if not decision.allowed:
        blocked = BlockedSend(
            organization_id=patient.organization_id,
            patient_id=patient.pk,
            channel=channel,
            content_class=content_class,
            attempted_at=at,
            reasons=decision.reasons,
            purpose=purpose[:200],
            actor=actor,
        )
        save_with_history(
            blocked, actor=actor, reason=f"Send blocked: {', '.join(decision.reasons)}"
        )
    return decision


def check_all_channels(patient: Patient, *, at: dt.datetime) -> dict[tuple[str, str], Decision]:
    """Every (channel, content class) decision for one patient, from one load of the facts."""
    validate_request(Channel.PORTAL, ContentClass.GENERAL, at)
    facts = load_facts(Patient.objects.filter(pk=patient.pk))[patient.pk]
    return {
        (channel, content_class): decide(facts, channel=channel, content_class=content_class, at=at)
        for channel in Channel.values
        for content_class in ContentClass.values
    }
