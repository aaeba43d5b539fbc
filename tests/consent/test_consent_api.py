"""The consent API: reads and preference changes, scoped and logged like admin."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from consent.models import ContactPreference
from consent.services import grant_consent

pytestmark = pytest.mark.django_db


def _url(name, patient):
    return reverse(name, args=[patient.pk])


def test_reads_return_consents_preferences_and_decisions(client, agent_a, patient_a):
    grant_consent(patient_a, kind="email", method="written_form", actor=agent_a)
    client.force_login(agent_a)
    # A decision after the grant: tomorrow, mid-afternoon in UTC.
    tomorrow_afternoon = (timezone.now() + dt.timedelta(days=1)).replace(hour=17, minute=0)

    consents = client.get(_url("patient-consents", patient_a)).json()
    preferences = client.get(_url("patient-preferences", patient_a)).json()
    decisions = client.get(
        _url("patient-contact-decisions", patient_a),
        {"content_class": "clinical", "at": tomorrow_afternoon.isoformat()},
    ).json()

    assert [(c["kind"], c["status"], c["in_force"]) for c in consents] == [
        ("email", "granted", True)
    ]
    assert preferences["opted_out_channels"] == []
    assert decisions["decisions"]["email"]["reasons"] == ["clinical_content_requires_portal"]
    assert decisions["decisions"]["email"]["allowed"] is False
    assert AccessLog.objects.filter(user=agent_a, channel="api").count() == 3


def test_a_preference_change_through_the_api_is_historied_with_path_api(client, agent_a, patient_a):
    client.force_login(agent_a)
    response = client.patch(
        _url("patient-preferences", patient_a),
        {
            "reason": "patient called",
            "opted_out_channels": ["sms", "voice"],
            "contact_start": "09:00",
            "contact_end": "17:00",
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    latest = ContactPreference.objects.get().history.latest("history_date")
    assert latest.opted_out_channels == ["sms", "voice"]
    assert (latest.history_user, latest.path, latest.history_change_reason) == (
        agent_a,
        "api",
        "patient called",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"opted_out_channels": ["sms"]}, "reason"),
        ({"reason": "x", "opted_out_channels": ["fax"]}, "fax"),
        ({"reason": "x", "timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"reason": "x", "contact_start": "09:00"}, "both the start and the end"),
    ],
)
def test_bad_changes_are_refused_by_name(client, agent_a, patient_a, body, message):
    client.force_login(agent_a)
    response = client.patch(
        _url("patient-preferences", patient_a), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ContactPreference.objects.exists()


def test_unknown_content_class_is_refused(client, agent_a, patient_a):
    client.force_login(agent_a)
    response = client.get(_url("patient-contact-decisions", patient_a), {"content_class": "promo"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "name", ["patient-consents", "patient-preferences", "patient-contact-decisions"]
)
def test_another_organizations_patient_is_404(client, agent_b, patient_a, name):
    client.force_login(agent_b)
    assert client.get(_url(name, patient_a)).status_code == 404
    assert not AccessLog.objects.exists()


def test_the_auditor_reads_but_cannot_change(client, auditor_a, patient_a):
    client.force_login(auditor_a)
    assert client.get(_url("patient-preferences", patient_a)).status_code == 200
    response = client.patch(
        _url("patient-preferences", patient_a),
        {"reason": "x", "portal_only": True},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not ContactPreference.objects.exists()


def test_anonymous_callers_get_nothing(client, patient_a):
    assert client.get(_url("patient-consents", patient_a)).status_code in (401, 403)
