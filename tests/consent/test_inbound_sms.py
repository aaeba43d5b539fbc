"""STOP/START/HELP texts change the patient's own consent, matched by the E.164 number."""

import datetime as dt

import pytest

from consent.models import Consent, ContactPreference, InboundSms
from consent.policy import check_contact
from consent.services import grant_consent, handle_inbound_sms
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db
RECEIVED = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
LATER = RECEIVED + dt.timedelta(hours=1)


@pytest.fixture
def texting_patient(patient_a, system_user):
    patient_a.phone = "(617) 555-0123"
    patient_a.save()
    grant_consent(
        patient_a,
        kind="sms_tcpa",
        method="imported",
        actor=system_user,
        evidence="EHR consent form",
        at=RECEIVED - dt.timedelta(days=10),
    )
    return patient_a


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "  Stop  ",
        "STOPALL",
        "unsubscribe",
        "CANCEL",
        "end",
        "QUIT",
        "revoke",
        "OPTOUT",
        "opt out",
        " Opt   Out ",
    ],
)
def test_every_stop_word_revokes_sms_consent_as_the_patients_own_change(texting_patient, body):
    result = handle_inbound_sms("+1 617-555-0123", body, RECEIVED)

    assert result.keyword == "stop"
    assert result.patient_ids == [texting_patient.pk]
    consent = Consent.objects.get(patient=texting_patient, kind="sms_tcpa")
    assert consent.status == "revoked"
    revoked = consent.history.latest("history_date")
    assert revoked.history_user is None
    assert revoked.method == "sms_keyword"
    assert revoked.captured_by == "inbound_message"
    assert revoked.path == "inbound_sms"
    preference = ContactPreference.objects.get(patient=texting_patient)
    assert preference.opted_out_channels == ["sms"]
    assert preference.history.latest("history_date").path == "inbound_sms"
    decision = check_contact(texting_patient, channel="sms", content_class="general", at=LATER)
    assert {"no_tcpa_consent", "sms_opted_out"} <= set(decision.reasons)


def test_start_opts_back_in(texting_patient):
    handle_inbound_sms("+16175550123", "STOP", RECEIVED)
    result = handle_inbound_sms("+16175550123", "unstop", RECEIVED + dt.timedelta(minutes=5))

    assert result.keyword == "start"
    assert Consent.objects.get(patient=texting_patient).status == "granted"
    assert ContactPreference.objects.get(patient=texting_patient).opted_out_channels == []
    assert check_contact(texting_patient, channel="sms", content_class="general", at=LATER).allowed


def test_help_answers_with_the_practice_contact_and_changes_nothing(texting_patient):
    texting_patient.organization.contact_phone = "(617) 555-0199"
    texting_patient.organization.save()
    result = handle_inbound_sms("6175550123", "help", RECEIVED)

    assert result.keyword == "help"
    assert "(617) 555-0199" in result.replies[0]
    assert Consent.objects.get(patient=texting_patient).status == "granted"
    assert InboundSms.objects.get().reply == result.replies[0]


def test_a_shared_number_stops_texts_to_everyone_with_it_in_every_organization(
    texting_patient, org_b
):
    relative = PatientFactory(organization=org_b, phone="617.555.0123")
    stranger = PatientFactory(organization=org_b, phone="(617) 555-0124")

    result = handle_inbound_sms("+16175550123", "STOP", RECEIVED)

    assert sorted(result.patient_ids) == sorted([texting_patient.pk, relative.pk])
    assert Consent.objects.get(patient=relative).status == "revoked"
    assert not Consent.objects.filter(patient=stranger).exists()
    assert set(InboundSms.objects.values_list("organization_id", flat=True)) == {
        texting_patient.organization_id,
        org_b.pk,
    }


def test_a_repeated_stop_changes_nothing_more(texting_patient):
    handle_inbound_sms("+16175550123", "STOP", RECEIVED)
    consent_versions = Consent.history.count()
    preference_versions = ContactPreference.history.count()
    handle_inbound_sms("+16175550123", "STOP", RECEIVED + dt.timedelta(minutes=1))
    assert Consent.history.count() == consent_versions
    assert ContactPreference.history.count() == preference_versions


def test_an_unknown_number_is_kept_and_changes_nothing(texting_patient):
    result = handle_inbound_sms("+12125550100", "STOP", RECEIVED)
    assert result.patient_ids == []
    assert Consent.objects.get(patient=texting_patient).status == "granted"
    kept = InboundSms.objects.get()
    assert kept.patient is None and kept.keyword == "stop"


def test_other_words_are_kept_without_a_change(texting_patient):
    result = handle_inbound_sms("+16175550123", "Please stop calling my husband", RECEIVED)
    assert result.keyword == "other"
    assert Consent.objects.get(patient=texting_patient).status == "granted"
