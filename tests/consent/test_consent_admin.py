"""Consent screens in admin: the patient panel, the staff forms, the auditor's history; scoped."""

import datetime as dt

import pytest
from django.urls import reverse

from audit.models import AccessLog
from consent.links import create_self_service_link
from consent.models import Consent, ContactPreference, SelfServiceLink
from consent.services import grant_consent, update_preferences

pytestmark = pytest.mark.django_db


def _urls(patient):
    return {
        "preferences": reverse("admin:consent_patient_preferences", args=[patient.pk]),
        "consent": reverse("admin:consent_patient_consent", args=[patient.pk]),
        "link": reverse("admin:consent_patient_link", args=[patient.pk]),
        "history": reverse("admin:consent_patient_history", args=[patient.pk]),
    }


def _preference_form(**overrides):
    data = {
        "preferred_channel": "",
        "preferred_language": "",
        "timezone": "",
        "contact_start": "",
        "contact_end": "",
        "reason": "patient asked by phone",
    }
    data.update(overrides)
    return data


def test_the_patient_page_shows_each_channel_and_why_it_is_blocked(client, agent_a, patient_a):
    client.force_login(agent_a)
    update_preferences(
        patient_a, actor=agent_a, path="admin", reason="asked", opted_out_channels={"sms"}
    )
    page = client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-reason="sms_opted_out"' in html
    assert "The patient opted out of text messages." in html
    assert 'data-reason="clinical_content_requires_portal"' in html
    assert _urls(patient_a)["preferences"] in html


def test_an_agent_records_a_phone_opt_out_with_a_reason(client, agent_a, patient_a):
    client.force_login(agent_a)
    response = client.post(
        _urls(patient_a)["preferences"], _preference_form(opted_out_channels=["sms"])
    )
    assert response.status_code == 302
    latest = ContactPreference.objects.get(patient=patient_a).history.latest("history_date")
    assert latest.opted_out_channels == ["sms"]
    assert latest.history_user == agent_a
    assert latest.path == "admin"
    assert latest.history_change_reason == "patient asked by phone"


def test_a_preference_change_without_a_reason_is_refused(client, agent_a, patient_a):
    client.force_login(agent_a)
    response = client.post(
        _urls(patient_a)["preferences"], _preference_form(reason="", opted_out_channels=["sms"])
    )
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not ContactPreference.objects.exists()


def test_tcpa_consent_needs_a_method_and_evidence(client, agent_a, patient_a):
    client.force_login(agent_a)
    url = _urls(patient_a)["consent"]
    base = {"kind": "sms_tcpa", "action": "grant", "reason": "patient agreed on the call"}
    no_method = client.post(url, {**base, "method": "", "evidence": "rec-1"})
    no_evidence = client.post(url, {**base, "method": "verbal_recorded_call", "evidence": ""})
    assert no_method.status_code == no_evidence.status_code == 200
    assert "TCPA consent cannot be recorded without its evidence" in no_evidence.content.decode()
    assert not Consent.objects.exists()

    done = client.post(url, {**base, "method": "verbal_recorded_call", "evidence": "rec-1"})
    assert done.status_code == 302
    consent = Consent.objects.get()
    assert (consent.status, consent.method, consent.evidence) == (
        "granted",
        "verbal_recorded_call",
        "rec-1",
    )
    assert consent.history.get().history_user == agent_a


def test_staff_create_a_self_service_link(client, agent_a, patient_a):
    client.force_login(agent_a)
    response = client.post(_urls(patient_a)["link"])
    assert response.status_code == 200
    assert "/preferences/" in response.content.decode()
    link = SelfServiceLink.objects.get()
    assert link.created_by == agent_a and link.patient == patient_a


def test_the_auditor_sees_who_changed_what_and_how(client, auditor_a, agent_a, patient_a):
    grant_consent(
        patient_a,
        kind="email",
        method="written_form",
        actor=agent_a,
        at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
        reason="signed intake form",
    )
    update_preferences(patient_a, actor=None, path="self_service", opted_out_channels={"email"})
    client.force_login(auditor_a)

    response = client.get(_urls(patient_a)["history"])
    html = response.content.decode()
    assert response.status_code == 200
    assert "Patient (self-service link)" in html
    assert agent_a.username in html and "signed intake form" in html
    assert AccessLog.objects.filter(
        user=auditor_a, action="history", object_ids=[patient_a.pk]
    ).exists()


@pytest.mark.parametrize("screen", ["preferences", "consent", "link"])
def test_the_auditor_cannot_change_anything(client, auditor_a, patient_a, screen):
    client.force_login(auditor_a)
    assert client.get(_urls(patient_a)[screen]).status_code == 403
    assert client.post(_urls(patient_a)[screen], _preference_form()).status_code == 403
    assert not ContactPreference.objects.exists() and not SelfServiceLink.objects.exists()


@pytest.mark.parametrize("screen", ["preferences", "consent", "link", "history"])
def test_another_organizations_agent_gets_404(client, agent_b, patient_a, screen):
    client.force_login(agent_b)
    assert client.get(_urls(patient_a)[screen]).status_code == 404
    assert (
        client.post(_urls(patient_a)[screen], _preference_form(portal_only="on")).status_code == 404
    )
    assert not ContactPreference.objects.exists()


@pytest.mark.parametrize(
    "model", ["consent", "contactpreference", "blockedsend", "inboundsms", "selfservicelink"]
)
def test_lists_show_only_the_users_organizations(client, agent_b, patient_a, agent_a, model):
    grant_consent(patient_a, kind="email", method="written_form", actor=agent_a)
    update_preferences(patient_a, actor=agent_a, path="admin", reason="x", portal_only=True)
    client.force_login(agent_b)
    response = client.get(reverse(f"admin:consent_{model}_changelist"))
    assert response.status_code == 200
    assert patient_a.mrn not in response.content.decode()
    client.force_login(agent_a)
    if model in ("consent", "contactpreference"):
        assert (
            patient_a.mrn
            in client.get(reverse(f"admin:consent_{model}_changelist")).content.decode()
        )


def test_the_patient_form_says_why_a_phone_number_cannot_be_used(client, agent_a, patient_a):
    client.force_login(agent_a)
    url = reverse("admin:patients_patient_change", args=[patient_a.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        phone="555-12", birth_date=patient_a.birth_date.isoformat(), change_reason="new phone"
    )
    response = client.post(url, data)
    assert response.status_code == 200
    assert "not a dialable phone number" in str(response.context["adminform"].form.errors)
    patient_a.refresh_from_db()
    assert patient_a.phone == "+16175550100"

    data.update(phone="(617) 555-0188")
    assert client.post(url, data).status_code == 302
    patient_a.refresh_from_db()
    assert patient_a.phone == "(617) 555-0188"


def test_staff_revoke_a_link_and_it_opens_nothing(client, agent_a, auditor_a, patient_a):
    link, token = create_self_service_link(patient_a, actor=agent_a)
    changelist = reverse("admin:consent_selfservicelink_changelist")
    client.force_login(auditor_a)
    client.post(changelist, {"action": "revoke", "_selected_action": [link.pk]})
    link.refresh_from_db()
    assert link.revoked_at is None  # auditors cannot

    client.force_login(agent_a)
    client.post(changelist, {"action": "revoke", "_selected_action": [link.pk]})
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert link.history.latest("history_date").history_user == agent_a
    client.logout()
    assert client.get(reverse("consent:self-service", args=[token])).status_code == 404
