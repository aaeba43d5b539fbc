"""What patients send back: inbound texts (after consent's STOP/START/HELP handling), voicemails.

A text that is not a keyword, or a voicemail, is a request to talk: a callback task due within
one business day; its lag (received to called back) is recorded when it is done. A "YES"/"C"
reply confirms the patient's next appointment within three days. The reply is also kept as the
response of the patient's latest contact, which stops the gap sequence's second attempt.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from carehub.history import get_system_user, save_with_history
from consent.models import InboundSms
from consent.services import handle_inbound_sms
from outreach.models import UPCOMING, Appointment, AppointmentStatus, FollowUp, OutreachAttempt
from outreach.services.appointments import confirm_appointment
from outreach.services.common import next_business_day, raise_follow_up

CONFIRM_WORDS = frozenset({"YES", "Y", "C", "CONFIRM"})


def _record_response(patient_id: int, text: str, at: dt.datetime, actor) -> None:
    latest = (
        OutreachAttempt.objects.select_for_update()
        .filter(
            patient_id=patient_id, attempted_at__lte=at, attempted_at__gte=at - dt.timedelta(30)
        )
        .order_by("-attempted_at")
        .first()
    )
    if latest is not None and not latest.response:
        latest.response = text[:1000]
        save_with_history(latest, actor=actor, reason="Patient replied", update_fields=["response"])


@transaction.atomic
def receive_sms(from_number: str, body: str, received_at: dt.datetime):
    """The SMS webhook's inbound message: consent keywords first, then confirmations/callbacks."""
    result = handle_inbound_sms(from_number, body, received_at)
    if result.keyword != InboundSms.Keyword.OTHER:
        return result
    actor = get_system_user()
    word = " ".join(body.split()).upper()
    for message in InboundSms.objects.filter(
        patient_id__in=result.patient_ids, received_at=received_at, body=body[:1600]
    ).select_related("patient"):
        patient = message.patient
        if word in CONFIRM_WORDS:
            upcoming = (
                Appointment.objects.filter(
                    patient_id=patient.pk,
                    status=AppointmentStatus.BOOKED,
                    starts_at__gt=received_at,
                    starts_at__lte=received_at + dt.timedelta(days=3),
                )
                .order_by("starts_at")
                .first()
            )
            if upcoming is not None:
                confirm_appointment(upcoming, actor=actor, reason="Patient confirmed by text")
                continue
        _record_response(patient.pk, body, received_at, actor)
        raise_follow_up(
            patient,
            kind=FollowUp.Kind.CALLBACK,
            actor=actor,
            received_at=received_at,
            due_at=next_business_day(received_at),
            source_reference=f"inbound-sms:{message.pk}",
            note="The patient texted; call back",
        )
    return result


@transaction.atomic
def record_voicemail(patient, *, actor, received_at: dt.datetime | None = None, note: str = ""):
    """A voicemail the patient left (logged by staff or the phone system): a callback task."""
    from outreach.services.common import check_actor

    check_actor(patient.organization_id, actor)
    received_at = received_at or timezone.now()
    return raise_follow_up(
        patient,
        kind=FollowUp.Kind.CALLBACK,
        actor=actor,
        received_at=received_at,
        due_at=next_business_day(received_at),
        source_reference="voicemail",
        note=note or "The patient left a voicemail; call back",
    )


__all__ = ["UPCOMING", "receive_sms", "record_voicemail"]
