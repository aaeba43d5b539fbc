import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent.models import Consent, ContactPreference
from consent.policy import check_contacts
from patients.models import Patient

pytestmark = pytest.mark.django_db


def test_demo_patients_show_every_kind_of_contact_decision(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=200)

    assert Consent.objects.filter(kind="sms_tcpa").count() > 100
    assert ContactPreference.objects.filter(do_not_contact=True).exists()
    assert ContactPreference.objects.filter(portal_only=True).exists()
    # The next Tuesday, noon Eastern: after every demo consent was captured, inside quiet hours.
    now = timezone.now()
    days_to_tuesday = (1 - now.weekday()) % 7 or 7
    tuesday_noon_eastern = (now + dt.timedelta(days=days_to_tuesday)).replace(
        hour=17, minute=0, second=0, microsecond=0
    )
    decisions = check_contacts(
        Patient.objects.all(), channel="sms", content_class="general", at=tuesday_noon_eastern
    )
    reasons = {code for decision in decisions.values() for code in decision.reasons}
    assert {"no_tcpa_consent", "sms_opted_out", "portal_only", "do_not_contact"} <= reasons
    assert sum(decision.allowed for decision in decisions.values()) > 80
    assert {v.history_user.username for v in Consent.history.all()[:5]} == {"carehub-system"}
