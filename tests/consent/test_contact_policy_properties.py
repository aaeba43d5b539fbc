"""check_contact against the rules of domain.md 3.2, restated plainly here.

Hypothesis draws a patient (status, phone, e-mail, address, time zone), their preferences, their
consents (none, granted with effective and expiry instants, revoked), a channel, a content class
and an instant; the test stores them and compares check_contact's reasons with `expected`.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.models import ChangePath, ContactPreference
from consent.policy import check_contact
from tests.consent.factories import ConsentFactory
from tests.patients.factories import PatientFactory

CHANNELS = ["portal", "sms", "email", "voice", "phone", "letter"]
CONTENT = ["clinical", "general"]
STATUSES = ["active", "moved", "disenrolled", "deceased"]
DIALABLE = {
    "+16175550123": True,
    "(617) 555-0123": True,
    "": False,
    "not a phone": False,
    "555-0123": False,
}
ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "America/Phoenix",
]
KINDS = ["sms_tcpa", "email", "portal"]
BASE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

instants = st.integers(min_value=0, max_value=400 * 24 * 60).map(
    lambda minutes: BASE + dt.timedelta(minutes=minutes)
)
consent_states = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["granted", "revoked"]),
        st.integers(min_value=-500, max_value=500),  # effective, days from the contact
        st.one_of(st.none(), st.integers(min_value=-500, max_value=500)),  # expiry
    ),
)
windows = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(lambda w: w[0] < w[1]),
)
preferences = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "do_not_contact": st.booleans(),
            "portal_only": st.booleans(),
            "opted_out": st.sets(st.sampled_from(CHANNELS)),
            "days": st.sets(st.integers(0, 6)),
            "window": windows,
            "timezone": st.sampled_from(["", *ZONES]),
        }
    ),
)


def expected(patient, preference, consents, channel, content, at) -> set[str]:
    """domain.md 3.2, one sentence per rule."""
    reasons = set()
    if patient["status"] == "deceased":
        reasons.add("patient_deceased")
    elif patient["status"] != "active":
        reasons.add("patient_inactive")
    # Clinical content only through the secure portal.
    if content == "clinical" and channel != "portal":
        reasons.add("clinical_content_requires_portal")
    if preference:
        # Do-not-contact: nothing.
        if preference["do_not_contact"]:
            reasons.add("do_not_contact")
        # Portal-only: everything through the portal.
        if preference["portal_only"] and channel != "portal":
            reasons.add("portal_only")
        if channel in preference["opted_out"]:
            reasons.add(channel + "_opted_out")

    def consent_in_force(kind):
        state = consents.get(kind)
        if state is None or state[0] != "granted":
            return False
        effective = at + dt.timedelta(days=state[1])
        expires = None if state[2] is None else at + dt.timedelta(days=state[2])
        return effective <= at and (expires is None or at < expires)

    # Automated SMS and automated calls need TCPA consent and a number; agents' calls a number.
    if channel in ("sms", "voice") and not consent_in_force("sms_tcpa"):
        reasons.add("no_tcpa_consent")
    if channel in ("sms", "voice", "phone") and not DIALABLE[patient["phone"]]:
        reasons.add("no_phone_number")
    # E-mail needs affirmative e-mail consent (and an address to send to).
    if channel == "email" and not consent_in_force("email"):
        reasons.add("no_email_consent")
    if channel == "email" and not patient["email"]:
        reasons.add("no_email_address")
    if channel == "portal" and not consent_in_force("portal"):
        reasons.add("no_portal_enrollment")
    if channel == "letter" and not patient["address"]:
        reasons.add("no_postal_address")

    zone = (preference and preference["timezone"]) or patient["timezone"]
    local = at.astimezone(ZoneInfo(zone))
    # Automated contact and agents' calls only between 08:00 and 21:00 in the patient's zone.
    if channel in ("portal", "sms", "email", "voice", "phone") and not 8 <= local.hour < 21:
        reasons.add("quiet_hours")
    # ... and inside their preferred window when they gave one; agents' calls too.
    if channel in ("portal", "sms", "email", "voice", "phone") and preference:
        outside_days = preference["days"] and local.weekday() not in preference["days"]
        window = preference["window"]
        outside_hours = window is not None and not (
            window[0] <= local.hour + local.minute / 60 < window[1]
        )
        if outside_days or outside_hours:
            reasons.add("outside_preferred_window")
    return reasons


@pytest.mark.django_db
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    patient=st.fixed_dictionaries(
        {
            "status": st.sampled_from(STATUSES),
            "phone": st.sampled_from(sorted(DIALABLE)),
            "email": st.sampled_from(["", "pat@example.org"]),
            "address": st.booleans(),
            "timezone": st.sampled_from(ZONES),
        }
    ),
    preference=preferences,
    consents=st.fixed_dictionaries(dict.fromkeys(KINDS, consent_states)),
    channel=st.sampled_from(CHANNELS),
    content=st.sampled_from(CONTENT),
    at=instants,
)
def test_check_contact_follows_the_written_rules(
    org_a, patient, preference, consents, channel, content, at
):
    stored = PatientFactory(
        organization=org_a,
        status=patient["status"],
        phone=patient["phone"],
        email=patient["email"],
        address_line="1 Main St" if patient["address"] else "",
        postal_code="02110" if patient["address"] else "",
        timezone=patient["timezone"],
    )
    if preference is not None:
        window = preference["window"]
        ContactPreference.objects.create(
            organization=org_a,
            patient=stored,
            do_not_contact=preference["do_not_contact"],
            portal_only=preference["portal_only"],
            opted_out_channels=sorted(preference["opted_out"]),
            contact_days=sorted(preference["days"]),
            contact_start=None if window is None else dt.time(window[0]),
            contact_end=None if window is None else _hour(window[1]),
            timezone=preference["timezone"],
            path=ChangePath.IMPORT,
            changed_at=at,
        )
    for kind, state in consents.items():
        if state is not None:
            status, effective_days, expiry_days = state
            ConsentFactory(
                patient=stored,
                kind=kind,
                status=status,
                effective_at=at + dt.timedelta(days=effective_days),
                expires_at=None if expiry_days is None else at + dt.timedelta(days=expiry_days),
            )

    decision = check_contact(stored, channel=channel, content_class=content, at=at)

    want = expected(patient, preference, consents, channel, content, at)
    assert set(decision.reasons) == want
    assert decision.allowed is (not want)
    assert len(decision.messages) == len(decision.reasons)


def _hour(hour: int) -> dt.time:
    # A window "until 24" ends at the last minute of the day.
    return dt.time(23, 59, 59, 999999) if hour == 24 else dt.time(hour)
