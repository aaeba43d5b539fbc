"""Demo consents and preferences for `manage.py seed_demo`: deterministic, synthetic.

Most demo patients consented to texts and e-mail on their intake form (imported); some joined
the portal; a few asked for portal-only, do-not-contact, a text opt-out or weekday mornings, so
every rule of the contact policy shows on some demo patient's page.
"""

import datetime as dt
import random

from django.utils import timezone

from carehub.history import bulk_create_with_history, get_system_user
from consent.models import ChangePath, Consent, ContactPreference
from patients.models import Organization, Patient

REASON = "demo data (seed_demo)"
SEED = 3_2026


def seed_demo_contact(organizations: list[Organization]) -> tuple[int, int]:
    """Create consents and preferences for the organizations' patients; returns the counts."""
    actor = get_system_user()
    rng = random.Random(SEED)
    now = timezone.now()
    consents, preferences = [], []
    patients = Patient.objects.filter(organization__in=organizations).order_by("pk")
    for patient in patients.only("pk", "organization_id", "email"):
        intake = now - dt.timedelta(days=rng.randint(30, 900))
        for kind, share in (
            (Consent.Kind.SMS_TCPA, 0.75),
            (Consent.Kind.EMAIL, 0.6 if patient.email else 0),
            (Consent.Kind.PORTAL, 0.4),
        ):
            if rng.random() < share:
                consents.append(
                    Consent(
                        organization_id=patient.organization_id,
                        patient=patient,
                        kind=kind,
                        status=Consent.Status.GRANTED,
                        method=Consent.Method.IMPORTED,
                        captured_by=Consent.CapturedBy.SYSTEM,
                        path=ChangePath.IMPORT,
                        effective_at=intake,
                        evidence=f"intake form {patient.pk:06d}",
                        changed_at=now,
                    )
                )
        roll = rng.random()
        if roll < 0.18:
            preferences.append(
                ContactPreference(
                    organization_id=patient.organization_id,
                    patient=patient,
                    opted_out_channels=["sms"] if roll < 0.06 else [],
                    portal_only=0.06 <= roll < 0.09,
                    do_not_contact=0.09 <= roll < 0.1,
                    preferred_channels=rng.choice([["sms", "phone"], ["email"], ["portal"]]),
                    contact_days=[0, 1, 2, 3, 4] if roll >= 0.12 else [],
                    contact_start=dt.time(9) if roll >= 0.14 else None,
                    contact_end=dt.time(12) if roll >= 0.14 else None,
                    path=ChangePath.IMPORT,
                    changed_at=now,
                )
            )
    bulk_create_with_history(consents, actor=actor, reason=REASON)
    bulk_create_with_history(preferences, actor=actor, reason=REASON)
    return len(consents), len(preferences)
