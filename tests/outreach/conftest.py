"""Outreach fixtures: templates for every purpose and channel, reachable patients, a site."""

import itertools

import pytest

from consent.models import Consent
from consent.services import grant_consent, update_preferences
from gaps.care_gaps import GapState
from outreach.models import Purpose
from outreach.services.templates import save_template
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from tests.patients.factories import PatientFactory, ProviderFactory, SiteFactory

__all__ = ["IN_MEASUREMENT_YEAR"]

BODIES = {
    Purpose.GAP_OUTREACH: "Hello {{ patient_first_name }}, you are due for a health screening. "
    "Call {{ practice_name }} at {{ practice_phone }} to schedule.",
    Purpose.APPOINTMENT_REMINDER: "Reminder: your visit at {{ site_name }} on "
    "{{ appointment_time }}. Reply YES to confirm.",
    Purpose.DAY_OF_CONFIRMATION: "See you today at {{ appointment_time }}, {{ site_name }}.",
    Purpose.NO_SHOW_RECOVERY: "We missed you today. Call {{ practice_phone }} to find a new time.",
    Purpose.WAITLIST_OFFER: "A slot opened at {{ site_name }} on {{ appointment_time }}. "
    "Call {{ practice_phone }}.",
    Purpose.POST_PROCEDURE: "How are you feeling after your visit? Call us with any question.",
    Purpose.DORMANT: "It has been a while. {{ practice_name }} would like to see you.",
    Purpose.SELF_SERVICE_LINK: "Choose how we contact you: {{ preferences_link }}",
}
CHANNELS = ["portal", "sms", "email", "voice", "letter"]
_phones = itertools.count(2000)


@pytest.fixture
def templates(org_a, org_b, system_user):
    for organization, purpose, channel in itertools.product((org_a, org_b), BODIES, CHANNELS):
        save_template(
            organization,
            actor=system_user,
            name=f"{purpose} {channel}",
            purpose=purpose,
            channel=channel,
            subject="A message from your practice" if channel in ("email", "portal") else "",
            body=BODIES[purpose],
        )


@pytest.fixture
def site_a(org_a):
    return SiteFactory(organization=org_a, name="Riverside Main Clinic")


@pytest.fixture
def provider_a(org_a, site_a):
    return ProviderFactory(organization=org_a, site=site_a, family_name="Chen", given_name="Lee")


def make_patient(organization, site, *, consents=("sms_tcpa",), actor, **preferences):
    """A patient with a dialable number of their own, the consents named and the preferences."""
    patient = PatientFactory(
        organization=organization,
        attributed_site=site,
        phone=f"+1617555{next(_phones):04d}",
        address_line="1 Main St",
        city="Boston",
        state="MA",
        postal_code="02110",
    )
    for kind in consents:
        grant_consent(
            patient,
            kind=kind,
            method=Consent.Method.WRITTEN_FORM,
            actor=actor,
            evidence="intake form",
            at=IN_MEASUREMENT_YEAR.replace(year=2025),
        )
    if preferences:
        update_preferences(patient, actor=actor, path="admin", reason="test", **preferences)
    return patient


@pytest.fixture
def patient_factory(org_a, site_a, system_user):
    def build(*, consents=("sms_tcpa",), **preferences):
        return make_patient(org_a, site_a, consents=consents, actor=system_user, **preferences)

    return build


def gap_for(patient, state=GapState.VALIDATED, measure_code="CMS130"):
    return CareGapFactory(patient=patient, state=state, measure_code=measure_code)
