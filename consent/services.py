"""Every change to consents and contact preferences.

Consent per (patient, kind[, proxy]):   (none) --grant--> granted --revoke--> revoked --grant--> …
Revoking never deletes the grant: the row changes state and its history keeps every earlier
state with who (`history_user`; empty when the patient acted), when, how (`method`,
`captured_by`) and through which path (`path`).

Every change takes the patient's preference-row lock first (consent.policy.lock_preferences), the
same lock a send takes, so a change committed before a send is the one the send sees.

The patient acts with `actor=None`, only through the self-service link and inbound texts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone

from carehub.errors import DomainError, NotAllowed
from carehub.history import stamp
from carehub.permissions import require_organization_access
from consent.models import (
    PATIENT_PATHS,
    ChangePath,
    Channel,
    Consent,
    ContactPreference,
    InboundSms,
    SelfServiceLink,
)
from consent.policy import lock_preferences
from patients.models import Patient
from patients.phones import digit_variants, normalize_phone, phone_digits_expression

PATIENT_METHODS = frozenset(
    {Consent.Method.SMS_KEYWORD, Consent.Method.ONLINE_FORM, Consent.Method.PORTAL}
)
PREFERENCE_FIELDS = (
    "portal_only",
    "do_not_contact",
    "opted_out_channels",
    "preferred_channels",
    "contact_days",
    "contact_start",
    "contact_end",
    "timezone",
    "preferred_language",
)


def _save(obj, *, actor, reason: str, update_fields=None) -> None:
    if actor is None:
        obj._history_user = None  # the patient acted; path and captured_by say how
        obj._change_reason = reason
    else:
        stamp(obj, actor=actor, reason=reason)
    obj.save(update_fields=update_fields)


def _check_actor(patient: Patient, actor, path: str) -> None:
    if actor is None:
        if path not in PATIENT_PATHS:
            raise NotAllowed(f"A change through {path!r} needs an acting user")
        return
    require_organization_access(actor, patient.organization_id, what="this patient")


def _captured_by(actor, method: str) -> str:
    if actor is None:
        if method == Consent.Method.SMS_KEYWORD:
            return Consent.CapturedBy.INBOUND_MESSAGE
        return Consent.CapturedBy.PATIENT_SELF_SERVICE
    return Consent.CapturedBy.SYSTEM if actor.is_system else Consent.CapturedBy.STAFF


def _default_path(actor, method: str) -> str:
    if actor is None:
        if method == Consent.Method.SMS_KEYWORD:
            return ChangePath.INBOUND_SMS
        return ChangePath.SELF_SERVICE
    if method == Consent.Method.IMPORTED:
        return ChangePath.IMPORT
    return ChangePath.SYSTEM if actor.is_system else ChangePath.ADMIN


def _check_consent_input(kind: str, method: str, proxy_name: str, actor, path: str) -> None:
    if kind not in Consent.Kind.values:
        raise DomainError(
            f"Unknown consent kind {kind!r}; expected one of {', '.join(Consent.Kind.values)}"
        )
    if method not in Consent.Method.values:
        raise DomainError(
            f"Unknown consent method {method!r}; expected one of {', '.join(Consent.Method.values)}"
        )
    if path not in ChangePath.values:
        raise DomainError(f"Unknown change path {path!r}")
    if kind == Consent.Kind.PROXY_AUTHORIZATION and not proxy_name.strip():
        raise DomainError("A proxy authorization names the caregiver or proxy")
    if kind != Consent.Kind.PROXY_AUTHORIZATION and proxy_name:
        raise DomainError("Only a proxy authorization names a proxy")
    if actor is None and method not in PATIENT_METHODS:
        raise DomainError(f"A patient's own change cannot have the method {method!r}")
    if actor is not None and method in (Consent.Method.SMS_KEYWORD, Consent.Method.ONLINE_FORM):
        raise DomainError(f"Staff cannot record a consent with the method {method!r}")


def _aware(at: dt.datetime | None, name: str = "at") -> dt.datetime:
    if at is None:
        return timezone.now()
    if timezone.is_naive(at):
        raise DomainError(f"{name} must be an aware datetime")
    return at


def _locked_consent(patient: Patient, kind: str, proxy_name: str, *, actor, path: str) -> Consent:
    """The patient's consent of this kind, locked (after the preference-row lock), or a new one."""
    lock_preferences(patient, actor=actor, path=path)
    proxy_name = proxy_name.strip()
    return Consent.objects.select_for_update().filter(
        patient_id=patient.pk, kind=kind, proxy_name=proxy_name
    ).first() or Consent(
        organization_id=patient.organization_id,
        patient_id=patient.pk,
        kind=kind,
        proxy_name=proxy_name,
    )


def _set_state(consent: Consent, *, status, method, actor, path, at, expires_at, evidence) -> None:
    consent.status = status
    consent.method = method
    consent.captured_by = _captured_by(actor, method)
    consent.path = path
    consent.effective_at = at
    consent.expires_at = expires_at
    consent.evidence = evidence.strip()[:300]
    consent.changed_at = timezone.now()


@transaction.atomic
def grant_consent(
    patient: Patient,
    *,
    kind: str,
    method: str,
    actor,
    evidence: str = "",
    at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    proxy_name: str = "",
    path: str | None = None,
    reason: str = "",
) -> Consent:
    at = _aware(at)
    path = path or _default_path(actor, method)
    _check_consent_input(kind, method, proxy_name, actor, path)
    _check_actor(patient, actor, path)
    evidence = evidence.strip()
    if kind == Consent.Kind.SMS_TCPA and not evidence:
        raise DomainError(
            "TCPA consent needs evidence: the call recording, form or message it was given in"
        )
    if expires_at is not None and _aware(expires_at, "expires_at") <= at:
        raise DomainError("The consent would expire before it takes effect")
    consent = _locked_consent(patient, kind, proxy_name, actor=actor, path=path)
    _set_state(
        consent,
        status=Consent.Status.GRANTED,
        method=method,
        actor=actor,
        path=path,
        at=at,
        expires_at=expires_at,
        evidence=evidence,
    )
    _save(consent, actor=actor, reason=reason or f"Granted ({consent.get_method_display()})")
    return consent


@transaction.atomic
def revoke_consent(
    patient: Patient,
    *,
    kind: str,
    method: str,
    actor,
    at: dt.datetime | None = None,
    proxy_name: str = "",
    evidence: str = "",
    path: str | None = None,
    reason: str = "",
) -> Consent:
    """Revoke; a patient who never consented gets a revoked record (their explicit 'no')."""
    at = _aware(at)
    path = path or _default_path(actor, method)
    _check_consent_input(kind, method, proxy_name, actor, path)
    _check_actor(patient, actor, path)
    consent = _locked_consent(patient, kind, proxy_name, actor=actor, path=path)
    if consent.status == Consent.Status.REVOKED:
        return consent  # already revoked (a repeated STOP): nothing changes
    _set_state(
        consent,
        status=Consent.Status.REVOKED,
        method=method,
        actor=actor,
        path=path,
        at=at,
        expires_at=None,
        evidence=evidence,
    )
    _save(consent, actor=actor, reason=reason or f"Revoked ({consent.get_method_display()})")
    return consent


def _channels(value, name: str) -> list[str]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise DomainError(f"{name} must be a list of channels")
    channels = list(value)
    unknown = [c for c in channels if c not in Channel.values]
    if unknown:
        raise DomainError(f"{name}: unknown channel(s) {', '.join(map(str, unknown))}")
    if len(set(channels)) != len(channels):
        raise DomainError(f"{name} lists a channel twice")
    return channels


def _clean_changes(changes: dict) -> dict:
    unknown = sorted(set(changes) - set(PREFERENCE_FIELDS))
    if unknown:
        raise DomainError(f"Unknown preference(s): {', '.join(unknown)}")
    clean = {}
    for name, value in changes.items():
        if name in ("portal_only", "do_not_contact"):
            if not isinstance(value, bool):
                raise DomainError(f"{name} must be true or false")
            clean[name] = value
        elif name == "opted_out_channels":
            clean[name] = sorted(_channels(value, name))
        elif name == "preferred_channels":
            clean[name] = _channels(value, name)
        elif name == "contact_days":
            days = sorted(set(value)) if hasattr(value, "__iter__") else None
            if days is None or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
                raise DomainError("contact_days are weekday numbers 0 (Monday) to 6 (Sunday)")
            clean[name] = days
        elif name in ("contact_start", "contact_end"):
            if value is not None and not isinstance(value, dt.time):
                raise DomainError(f"{name} must be a time of day")
            clean[name] = value.replace(tzinfo=None) if value is not None else None
        elif name == "timezone":
            value = (value or "").strip()
            if value:
                try:
                    ZoneInfo(value)
                except (ZoneInfoNotFoundError, ValueError):
                    raise DomainError(f"Unknown time zone {value!r}") from None
            clean[name] = value
        elif name == "preferred_language":
            value = (value or "").strip()
            if len(value) > 16 or not re.fullmatch(r"[A-Za-z]{0,8}(-[A-Za-z0-9]{1,8})*", value):
                raise DomainError(f"preferred_language {value!r} is not a language tag")
            clean[name] = value
    return clean


@transaction.atomic
def update_preferences(
    patient: Patient, *, actor, path: str, reason: str = "", **changes
) -> ContactPreference:
    """Apply the changes the patient asked for; nothing changes when any of them is invalid."""
    if path not in ChangePath.values:
        raise DomainError(f"Unknown change path {path!r}")
    _check_actor(patient, actor, path)
    reason = reason.strip()
    if actor is not None and path in (ChangePath.ADMIN, ChangePath.API) and not reason:
        raise DomainError("Say why the preferences change (e.g. 'patient asked by phone')")
    clean = _clean_changes(changes)
    preference = lock_preferences(patient, actor=actor, path=path)
    changed = [name for name, value in clean.items() if getattr(preference, name) != value]
    for name in changed:
        setattr(preference, name, clean[name])
    if (preference.contact_start is None) != (preference.contact_end is None):
        raise DomainError("Give both the start and the end of the preferred hours, or neither")
    if preference.contact_start is not None and preference.contact_start >= preference.contact_end:
        raise DomainError("The preferred hours must start before they end")
    if not changed:
        return preference
    preference.path = path
    preference.changed_at = timezone.now()
    if not reason:
        reason = {
            ChangePath.SELF_SERVICE: "Patient's own change (self-service link)",
            ChangePath.INBOUND_SMS: "Patient's own change (text message)",
        }.get(path, "Preferences changed")
    _save(preference, actor=actor, reason=reason)
    return preference


# Inbound texts (domain.md 3.2). Carriers and the CTIA handbook use these words.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP"})


def classify_keyword(body: str) -> str:
    word = " ".join(body.split()).upper()
    if word in STOP_WORDS:
        return InboundSms.Keyword.STOP
    if word in START_WORDS:
        return InboundSms.Keyword.START
    if word in HELP_WORDS:
        return InboundSms.Keyword.HELP
    return InboundSms.Keyword.OTHER


@dataclass
class InboundResult:
    keyword: str
    patient_ids: list[int] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)


def patients_with_number(e164: str):
    """Patients whose phone is this number, in any organization (index patient_phone_digits)."""
    candidates = (
        Patient.objects.annotate(phone_digits=phone_digits_expression())
        .filter(phone_digits__in=digit_variants(e164))
        .select_related("organization")
        .order_by("pk")
    )
    return [p for p in candidates if normalize_phone(p.phone) == e164]


def _reply(keyword: str, organization) -> str:
    name = organization.name
    if keyword == InboundSms.Keyword.STOP:
        return f"{name}: you will get no more texts from us. Reply START to subscribe again."
    if keyword == InboundSms.Keyword.START:
        return f"{name}: you will get texts from us again. Reply STOP to stop, HELP for help."
    if keyword == InboundSms.Keyword.HELP:
        contact = organization.contact_phone or "the number on your appointment letter"
        return f"{name}: for help call {contact}. Reply STOP to stop texts."
    return ""


@transaction.atomic
def handle_inbound_sms(from_number: str, body: str, received_at: dt.datetime) -> InboundResult:
    """STOP/START/HELP from a patient's number, applied to every patient with that number.

    A number shared by family members belongs to each of them; a STOP from it must stop texts to
    all of them. The change is the patient's own (no acting user, path inbound_sms).
    """
    received_at = _aware(received_at, "received_at")
    keyword = classify_keyword(body)
    result = InboundResult(keyword=keyword)
    number = normalize_phone(from_number)
    patients = patients_with_number(number) if number else []
    if not patients:
        _save(
            InboundSms(
                from_number=from_number[:32],
                body=body[:1600],
                keyword=keyword,
                received_at=received_at,
            ),
            actor=None,
            reason="Inbound text from an unknown number",
        )
        return result
    for patient in patients:
        reply = _reply(keyword, patient.organization)
        message = InboundSms(
            organization_id=patient.organization_id,
            patient=patient,
            from_number=number,
            body=body[:1600],
            keyword=keyword,
            received_at=received_at,
            reply=reply,
        )
        _save(message, actor=None, reason=f"Inbound text ({keyword})")
        evidence = f"Inbound SMS #{message.pk}"
        if keyword == InboundSms.Keyword.STOP:
            revoke_consent(
                patient,
                kind=Consent.Kind.SMS_TCPA,
                method=Consent.Method.SMS_KEYWORD,
                actor=None,
                at=received_at,
                evidence=evidence,
            )
            _set_sms_opt_out(patient, opted_out=True)
        elif keyword == InboundSms.Keyword.START:
            grant_consent(
                patient,
                kind=Consent.Kind.SMS_TCPA,
                method=Consent.Method.SMS_KEYWORD,
                actor=None,
                at=received_at,
                evidence=evidence,
            )
            _set_sms_opt_out(patient, opted_out=False)
        result.patient_ids.append(patient.pk)
        if reply:
            result.replies.append(reply)
    return result


def _set_sms_opt_out(patient: Patient, *, opted_out: bool) -> None:
    preference = lock_preferences(patient, actor=None, path=ChangePath.INBOUND_SMS)
    channels = set(preference.opted_out_channels)
    channels = channels | {Channel.SMS.value} if opted_out else channels - {Channel.SMS.value}
    update_preferences(
        patient, actor=None, path=ChangePath.INBOUND_SMS, opted_out_channels=sorted(channels)
    )


@transaction.atomic
def record_self_service_changes(
    link: SelfServiceLink, *, consents: dict[str, bool], **preference_changes
) -> ContactPreference:
    """What the patient chose on their self-service page: preferences and e-mail/text consent.

    Consent changes are granted or revoked only when the answer differs from what is in force,
    so saving the page unchanged leaves no history.
    """
    patient = link.patient
    now = timezone.now()
    preference = update_preferences(
        patient, actor=None, path=ChangePath.SELF_SERVICE, **preference_changes
    )
    in_force = {c.kind for c in Consent.objects.filter(patient_id=patient.pk) if c.in_force(now)}
    evidence = f"Self-service link #{link.pk}"
    for kind, wanted in consents.items():
        if wanted and kind not in in_force:
            grant_consent(
                patient,
                kind=kind,
                method=Consent.Method.ONLINE_FORM,
                actor=None,
                at=now,
                evidence=evidence,
            )
        elif not wanted and kind in in_force:
            revoke_consent(
                patient,
                kind=kind,
                method=Consent.Method.ONLINE_FORM,
                actor=None,
                at=now,
                evidence=evidence,
            )
    link.last_used_at = now
    _save(link, actor=None, reason="Used by the patient", update_fields=["last_used_at"])
    return preference
