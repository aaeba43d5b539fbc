"""Signed, expiring, single-patient links to the self-service preferences page.

The token is the link's id signed with SECRET_KEY (django.core.signing, its own salt), so it
cannot be forged or pointed at another patient; the row says when it expires and whether staff
revoked it. The token is shown once, when staff create it, and is never stored.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import save_with_history
from carehub.permissions import require_organization_access
from consent.models import SelfServiceLink
from patients.models import Patient

SALT = "consent.self-service-link"


class LinkInvalid(DomainError):
    """The token was altered, belongs to no link, or the link was revoked."""


class LinkExpired(DomainError):
    pass


@transaction.atomic
def create_self_service_link(patient: Patient, *, actor) -> tuple[SelfServiceLink, str]:
    require_organization_access(actor, patient.organization_id, what="this patient")
    now = timezone.now()
    link = SelfServiceLink(
        organization_id=patient.organization_id,
        patient=patient,
        created_by=actor,
        created_at=now,
        expires_at=now + dt.timedelta(hours=settings.CAREHUB_SELF_SERVICE_LINK_HOURS),
    )
    save_with_history(link, actor=actor, reason="Self-service link created for the patient")
    return link, signing.dumps({"link": link.pk}, salt=SALT)


def resolve_self_service_link(token: str, *, now: dt.datetime | None = None) -> SelfServiceLink:
    now = now or timezone.now()
    try:
        payload = signing.loads(token, salt=SALT)
        link_id = int(payload["link"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkInvalid("This link is not valid.") from None
    link = (
        SelfServiceLink.objects.select_related("patient", "patient__organization")
        .filter(pk=link_id)
        .first()
    )
    if link is None or link.revoked_at is not None:
        raise LinkInvalid("This link is not valid.")
    if now >= link.expires_at:
        raise LinkExpired("This link has expired.")
    return link


@transaction.atomic
def revoke_self_service_link(link: SelfServiceLink, *, actor) -> SelfServiceLink:
    link = SelfServiceLink.objects.select_for_update().get(pk=link.pk)
    require_organization_access(actor, link.organization_id, what="this patient")
    if link.revoked_at is None:
        link.revoked_at = timezone.now()
        save_with_history(
            link, actor=actor, reason="Self-service link revoked", update_fields=["revoked_at"]
        )
    return link
