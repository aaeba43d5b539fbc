"""Scoped reads: outreach rows of the organizations the user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from outreach.models import (
    Appointment,
    FollowUp,
    LetterBatch,
    MessageTemplate,
    OutboundMessage,
    OutreachAttempt,
    WaitlistEntry,
)
from patients.selectors import organizations_for


def _orgs(user):
    return organizations_for(user).values("pk")


def templates_for(user) -> QuerySet[MessageTemplate]:
    return MessageTemplate.objects.filter(organization__in=_orgs(user)).select_related(
        "organization"
    )


def attempts_for(user) -> QuerySet[OutreachAttempt]:
    return OutreachAttempt.objects.filter(organization__in=_orgs(user)).select_related(
        "patient", "actor", "template"
    )


def appointments_for(user) -> QuerySet[Appointment]:
    return Appointment.objects.filter(organization__in=_orgs(user)).select_related(
        "patient", "site", "provider"
    )


def follow_ups_for(user) -> QuerySet[FollowUp]:
    return FollowUp.objects.filter(organization__in=_orgs(user)).select_related(
        "patient", "done_by"
    )


def messages_for(user) -> QuerySet[OutboundMessage]:
    return OutboundMessage.objects.filter(organization__in=_orgs(user)).select_related("patient")


def letter_batches_for(user) -> QuerySet[LetterBatch]:
    return LetterBatch.objects.filter(organization__in=_orgs(user)).select_related("created_by")


def waitlist_for(user) -> QuerySet[WaitlistEntry]:
    return WaitlistEntry.objects.filter(organization__in=_orgs(user)).select_related(
        "patient", "site"
    )
