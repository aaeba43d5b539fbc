"""Granting, revoking and preference changes: validation, history with actor and path."""

import datetime as dt

import pytest
from django.utils import timezone

from carehub.errors import DomainError, NotAllowed
from consent.models import Consent, ContactPreference
from consent.policy import check_contact
from consent.services import grant_consent, revoke_consent, update_preferences

pytestmark = pytest.mark.django_db
NOON_EASTERN = dt.datetime(2026, 11, 24, 17, 0, tzinfo=dt.UTC)  # a Tuesday, 12:00 in Boston


def test_revoking_keeps_the_grant_in_history(patient_a, agent_a):
    grant_consent(
        patient_a,
        kind="sms_tcpa",
        method="verbal_recorded_call",
        actor=agent_a,
        evidence="call 991",
        at=NOON_EASTERN - dt.timedelta(days=1),
    )
    revoke_consent(
        patient_a, kind="sms_tcpa", method="written_form", actor=agent_a, at=NOON_EASTERN
    )

    consent = Consent.objects.get(patient=patient_a, kind="sms_tcpa")
    assert consent.status == "revoked"
    versions = list(consent.history.order_by("history_date", "history_id"))
    assert [v.status for v in versions] == ["granted", "revoked"]
    assert [v.method for v in versions] == ["verbal_recorded_call", "written_form"]
    assert {v.history_user for v in versions} == {agent_a}
    assert versions[0].evidence == "call 991"
    assert all(v.captured_by == "staff" and v.path == "admin" for v in versions)
    sms = check_contact(patient_a, channel="sms", content_class="general", at=NOON_EASTERN)
    assert "no_tcpa_consent" in sms.reasons


def test_tcpa_consent_without_evidence_is_refused_and_nothing_is_written(patient_a, agent_a):
    with pytest.raises(DomainError, match="evidence"):
        grant_consent(patient_a, kind="sms_tcpa", method="verbal_recorded_call", actor=agent_a)
    assert not Consent.objects.exists()
    assert not Consent.history.exists()
    assert not ContactPreference.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "fax", "method": "written_form"}, "Unknown consent kind"),
        ({"kind": "email", "method": "carrier pigeon"}, "Unknown consent method"),
        ({"kind": "proxy_authorization", "method": "written_form"}, "names the caregiver"),
        ({"kind": "email", "method": "sms_keyword"}, "Staff cannot"),
    ],
)
def test_bad_consent_input_is_refused_by_name(patient_a, agent_a, kwargs, message):
    with pytest.raises(DomainError, match=message):
        grant_consent(patient_a, actor=agent_a, evidence="x", **kwargs)
    assert not Consent.objects.exists()


def test_staff_of_another_organization_cannot_change_consent(patient_a, agent_b):
    with pytest.raises(NotAllowed):
        grant_consent(patient_a, kind="email", method="written_form", actor=agent_b)
    with pytest.raises(NotAllowed):
        update_preferences(patient_a, actor=agent_b, path="admin", reason="x", portal_only=True)
    assert not Consent.objects.exists() and not ContactPreference.objects.exists()


def test_only_the_patient_paths_may_act_without_a_user(patient_a):
    with pytest.raises(NotAllowed, match="needs an acting user"):
        update_preferences(patient_a, actor=None, path="admin", portal_only=True)
    with pytest.raises(DomainError):
        grant_consent(patient_a, kind="email", method="written_form", actor=None)


def test_expired_consent_does_not_count(patient_a, system_user):
    granted_at = NOON_EASTERN - dt.timedelta(days=400)
    grant_consent(
        patient_a,
        kind="email",
        method="imported",
        actor=system_user,
        at=granted_at,
        expires_at=granted_at + dt.timedelta(days=365),
    )
    decision = check_contact(patient_a, channel="email", content_class="general", at=NOON_EASTERN)
    assert decision.reasons == ["no_email_consent"]
    assert Consent.objects.get().captured_by == "system"
    assert Consent.objects.get().path == "import"


def test_preference_change_records_actor_path_and_reason(patient_a, agent_a):
    update_preferences(
        patient_a,
        actor=agent_a,
        path="admin",
        reason="patient asked by phone",
        opted_out_channels={"sms"},
    )
    preference = ContactPreference.objects.get(patient=patient_a)
    latest = preference.history.latest("history_date")
    assert latest.opted_out_channels == ["sms"]
    assert latest.history_user == agent_a
    assert latest.path == "admin"
    assert latest.history_change_reason == "patient asked by phone"


def test_staff_preference_change_needs_a_reason(patient_a, agent_a):
    with pytest.raises(DomainError, match="Say why"):
        update_preferences(patient_a, actor=agent_a, path="api", portal_only=True)
    assert not ContactPreference.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"opted_out_channels": {"pigeon"}}, "unknown channel"),
        ({"preferred_channels": ["sms", "sms"]}, "twice"),
        ({"contact_days": {7}}, "weekday"),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"contact_start": dt.time(9)}, "both the start and the end"),
        ({"contact_start": dt.time(18), "contact_end": dt.time(9)}, "start before"),
        ({"favourite_colour": "blue"}, "Unknown preference"),
        ({"portal_only": "yes"}, "true or false"),
    ],
)
def test_invalid_preferences_change_nothing(patient_a, agent_a, changes, message):
    update_preferences(patient_a, actor=agent_a, path="admin", reason="setup", portal_only=True)
    before = ContactPreference.history.count()
    with pytest.raises(DomainError, match=message):
        update_preferences(
            patient_a, actor=agent_a, path="admin", reason="x", do_not_contact=True, **changes
        )
    preference = ContactPreference.objects.get()
    assert preference.do_not_contact is False
    assert ContactPreference.history.count() == before


def test_saving_the_same_preferences_writes_no_history(patient_a, agent_a):
    update_preferences(patient_a, actor=agent_a, path="admin", reason="a", portal_only=True)
    count = ContactPreference.history.count()
    update_preferences(patient_a, actor=agent_a, path="admin", reason="b", portal_only=True)
    assert ContactPreference.history.count() == count


def test_unknown_channel_or_content_class_is_an_error_not_allowed(patient_a):
    now = timezone.now()
    with pytest.raises(DomainError, match="Unknown channel"):
        check_contact(patient_a, channel="fax", content_class="general", at=now)
    with pytest.raises(DomainError, match="Unknown content class"):
        check_contact(patient_a, channel="sms", content_class="marketing", at=now)
    with pytest.raises(DomainError, match="aware"):
        check_contact(
            patient_a, channel="sms", content_class="general", at=dt.datetime(2026, 1, 1, 12)
        )


def test_agent_calls_are_not_tcpa_automated_but_follow_calling_hours_and_the_window(
    patient_a, agent_a
):
    late_evening = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)  # 21:30 Tuesday in Boston
    call = check_contact(patient_a, channel="phone", content_class="general", at=late_evening)
    sms = check_contact(patient_a, channel="sms", content_class="general", at=late_evening)
    assert call.reasons == ["quiet_hours"]  # no TCPA consent needed, but 08:00-21:00 binds
    assert set(sms.reasons) == {"no_tcpa_consent", "quiet_hours"}
    afternoon = late_evening - dt.timedelta(hours=6)
    assert check_contact(patient_a, channel="phone", content_class="general", at=afternoon).allowed

    update_preferences(
        patient_a,
        actor=agent_a,
        path="admin",
        reason="asked for mornings",
        contact_start=dt.time(9),
        contact_end=dt.time(12),
    )
    call = check_contact(patient_a, channel="phone", content_class="general", at=afternoon)
    assert call.reasons == ["outside_preferred_window"]


def test_quiet_hours_follow_the_patients_time_zone(patient_a, agent_a):
    patient_a.timezone = "America/Los_Angeles"
    patient_a.save()
    grant_consent(
        patient_a,
        kind="sms_tcpa",
        method="written_form",
        actor=agent_a,
        evidence="form 7",
        at=NOON_EASTERN - dt.timedelta(days=1),
    )
    eight_am_boston = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)  # 05:00 in Los Angeles
    assert check_contact(
        patient_a, channel="sms", content_class="general", at=eight_am_boston
    ).reasons == ["quiet_hours"]
    assert check_contact(
        patient_a,
        channel="sms",
        content_class="general",
        at=eight_am_boston + dt.timedelta(hours=3),
    ).allowed


def test_a_number_that_cannot_be_dialed_blocks_texts_and_calls(patient_a, agent_a):
    patient_a.phone = "call the front desk"
    patient_a.save()
    grant_consent(
        patient_a,
        kind="sms_tcpa",
        method="written_form",
        actor=agent_a,
        evidence="form 8",
        at=NOON_EASTERN - dt.timedelta(days=1),
    )
    for channel in ("sms", "voice", "phone"):
        decision = check_contact(
            patient_a, channel=channel, content_class="general", at=NOON_EASTERN
        )
        assert decision.reasons == ["no_phone_number"], channel
