"""Scoped reads of consents, preferences, blocked sends, inbound texts and links."""

from dataclasses import dataclass

from django.db.models import QuerySet

from consent.models import (
    PATIENT_PATHS,
    BlockedSend,
    ChangePath,
    Consent,
    ContactPreference,
    InboundSms,
    SelfServiceLink,
)
from patients.selectors import organizations_for


def _granted(user) -> QuerySet:
    return organizations_for(user).values("pk")


def consents_for(user) -> QuerySet[Consent]:
    return Consent.objects.filter(organization__in=_granted(user)).select_related(
        "patient", "organization"
    )


def preferences_for(user) -> QuerySet[ContactPreference]:
    return ContactPreference.objects.filter(organization__in=_granted(user)).select_related(
        "patient", "organization"
    )


def blocked_sends_for(user) -> QuerySet[BlockedSend]:
    return BlockedSend.objects.filter(organization__in=_granted(user)).select_related(
        "patient", "organization", "actor"
    )


def inbound_sms_for(user) -> QuerySet[InboundSms]:
    # Texts from numbers no patient has carry no organization and are not shown to anyone here.
    return InboundSms.objects.filter(organization__in=_granted(user)).select_related(
        "patient", "organization"
    )


def self_service_links_for(user) -> QuerySet[SelfServiceLink]:
    return SelfServiceLink.objects.filter(organization__in=_granted(user)).select_related(
        "patient", "organization", "created_by"
    )


_PREFERENCE_FIELDS = (
    "opted_out_channels",
    "portal_only",
    "do_not_contact",
    "preferred_channels",
    "preferred_language",
    "contact_days",
    "contact_start",
    "contact_end",
    "timezone",
)


@dataclass(frozen=True)
class ContactHistoryRow:
    at: object
    record: str
    change: str
    who: str
    how: str
    reason: str


def _who(row) -> str:
    if row.history_user is not None:
        return row.history_user.get_username()
    return f"Patient ({ChangePath(row.path).label.lower()})" if row.path in PATIENT_PATHS else "—"


def contact_history(patient) -> list[ContactHistoryRow]:
    """Every consent and preference version of one patient, newest first: who, when, how, what.

    The patient's own changes carry no user; they are named as the patient with their path.
    """
    rows = []
    for version in Consent.history.filter(patient_id=patient.pk).select_related("history_user"):
        rows.append(
            (
                version,
                ContactHistoryRow(
                    at=version.history_date,
                    record=f"Consent: {Consent.Kind(version.kind).label}"
                    + (f" ({version.proxy_name})" if version.proxy_name else ""),
                    change=Consent.Status(version.status).label
                    + (f", expires {version.expires_at:%Y-%m-%d}" if version.expires_at else ""),
                    who=_who(version),
                    how=f"{Consent.Method(version.method).label}; {ChangePath(version.path).label}"
                    + (f"; evidence: {version.evidence}" if version.evidence else ""),
                    reason=version.history_change_reason or "",
                ),
            )
        )
    previous = None
    versions = (
        ContactPreference.history.filter(patient_id=patient.pk)
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
    for version in versions:
        changes = [
            f"{name}: {getattr(previous, name)!r} → {getattr(version, name)!r}"
            if previous is not None
            else f"{name}: {getattr(version, name)!r}"
            for name in _PREFERENCE_FIELDS
            if previous is None or getattr(previous, name) != getattr(version, name)
        ]
        rows.append(
            (
                version,
                ContactHistoryRow(
                    at=version.history_date,
                    record="Preferences",
                    change="; ".join(changes) or "no change",
                    who=_who(version),
                    how=ChangePath(version.path).label,
                    reason=version.history_change_reason or "",
                ),
            )
        )
        previous = version
    rows.sort(key=lambda pair: (pair[0].history_date, pair[0].history_id), reverse=True)
    return [row for _, row in rows]
