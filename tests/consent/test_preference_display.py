"""Contact preferences read as words in admin, not as stored JSON (`["sms"]`, `[0, 1]`)."""

import pytest
from django.urls import reverse

from consent.models import ContactPreference
from consent.services import update_preferences

pytestmark = pytest.mark.django_db


@pytest.fixture
def preference(patient_a, agent_a):
    update_preferences(
        patient_a,
        actor=agent_a,
        path="admin",
        reason="patient asked by phone",
        opted_out_channels=["sms", "voice"],
        preferred_channels=["email", "phone"],
        contact_days=[0, 2, 4],
    )
    return ContactPreference.objects.get(patient=patient_a)


def test_the_preference_list_shows_channel_names(client, supervisor_a, preference):
    client.force_login(supervisor_a)
    html = client.get(reverse("admin:consent_contactpreference_changelist")).content.decode()
    assert "Text message (SMS), Automated voice call" in html
    assert "E-mail, Phone call by an agent" in html
    assert "[&quot;sms&quot;" not in html and '["sms"' not in html


def test_the_preference_page_shows_channel_and_day_names(client, supervisor_a, preference):
    client.force_login(supervisor_a)
    url = reverse("admin:consent_contactpreference_change", args=[preference.pk])
    html = client.get(url).content.decode()
    assert "Text message (SMS), Automated voice call" in html
    assert "Monday, Wednesday, Friday" in html
    assert "[&quot;" not in html and "[0, 2, 4]" not in html
