"""The patient's self-service page: signed, expiring, one patient, no login, no clinical detail."""

import datetime as dt

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from consent.links import SALT, create_self_service_link, revoke_self_service_link
from consent.models import Consent, ContactPreference, SelfServiceLink
from consent.selectors import contact_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(patient_a, agent_a):
    made, token = create_self_service_link(patient_a, actor=agent_a)
    return made, reverse("consent:self-service", args=[token])


def _form(**overrides):
    data = {
        "preferred_channel": "",
        "preferred_language": "",
        "contact_start": "",
        "contact_end": "",
    }
    data.update(overrides)
    return data


def test_the_page_shows_preferences_but_no_name_or_clinical_detail(client, link, patient_a):
    response = client.get(link[1])
    page = response.content.decode()
    assert response.status_code == 200
    assert patient_a.organization.name in page
    assert patient_a.family_name not in page and patient_a.given_name not in page
    assert patient_a.mrn not in page
    assert "<script" not in page  # works without JavaScript
    assert response["Referrer-Policy"] == "same-origin"  # the token never leaves CareHub
    assert "no-store" in response["Cache-Control"]


def test_opting_out_of_email_is_recorded_as_the_patients_own_change(client, link, patient_a):
    response = client.post(link[1], _form(opted_out_channels=["email"]))
    assert response.status_code == 302

    preference = ContactPreference.objects.get(patient=patient_a)
    assert preference.opted_out_channels == ["email"]
    latest = preference.history.latest("history_date")
    assert latest.history_user is None and latest.path == "self_service"
    assert contact_history(patient_a)[0].who == "Patient (self-service link)"
    assert SelfServiceLink.objects.get().last_used_at is not None


def test_ticking_the_text_agreement_grants_tcpa_consent_with_the_link_as_evidence(
    client, link, patient_a
):
    client.post(link[1], _form(sms_consent="on"))
    consent = Consent.objects.get(patient=patient_a, kind="sms_tcpa")
    assert consent.status == "granted"
    assert consent.method == "online_form"
    assert consent.captured_by == "patient_self_service"
    assert consent.evidence == f"Self-service link #{link[0].pk}"

    client.post(link[1], _form())
    assert Consent.objects.get(patient=patient_a, kind="sms_tcpa").status == "revoked"


def test_bad_hours_are_refused_and_nothing_changes(client, link, patient_a):
    response = client.post(
        link[1], _form(contact_start="18:00", contact_end="09:00", opted_out_channels=["sms"])
    )
    assert response.status_code == 200
    assert "must start before they end" in response.content.decode()
    assert not ContactPreference.objects.exists()


def test_an_expired_link_says_so_and_shows_nothing(client, link, patient_a):
    made, url = link
    made.expires_at = timezone.now() - dt.timedelta(minutes=1)
    made.save()
    response = client.get(url)
    assert response.status_code == 410
    page = response.content.decode()
    assert "expired" in page
    assert patient_a.organization.name not in page
    assert client.post(url, _form(opted_out_channels=["sms"])).status_code == 410
    assert not ContactPreference.objects.exists()


def test_a_tampered_or_revoked_link_is_not_valid(client, link, agent_a):
    made, url = link
    forged = signing.dumps({"link": made.pk + 1}, salt="another-salt")
    assert client.get(reverse("consent:self-service", args=[forged])).status_code == 404
    assert client.get(url[:-3] + "xx/").status_code == 404
    revoke_self_service_link(made, actor=agent_a)
    assert client.get(url).status_code == 404


def test_a_link_opens_only_its_own_patient(client, patient_a, patient_b, agent_a, agent_b):
    made_a, token_a = create_self_service_link(patient_a, actor=agent_a)
    create_self_service_link(patient_b, actor=agent_b)
    assert signing.loads(token_a, salt=SALT) == {"link": made_a.pk}
    client.post(reverse("consent:self-service", args=[token_a]), _form(portal_only="on"))
    assert ContactPreference.objects.get().patient == patient_a
