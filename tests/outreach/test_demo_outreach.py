"""The demo data obeys the contact policy: nobody who may not be contacted is in outreach."""

import pytest
from django.core.management import call_command

from gaps.care_gaps import CareGap, GapState
from gaps.demo import CONTACTED, uncontactable_patients
from outreach.models import Appointment, MessageTemplate, OutreachAttempt
from patients.models import Patient

pytestmark = pytest.mark.django_db


def test_demo_outreach_is_consistent_with_the_policy(settings):
    settings.DEBUG = True
    call_command("seed_demo", patients=400)
    unreachable = uncontactable_patients(Patient.objects.all())
    assert unreachable, "the demo should show patients nobody may contact"
    assert not CareGap.objects.filter(patient_id__in=unreachable, state__in=CONTACTED).exists()
    assert CareGap.objects.filter(patient_id__in=unreachable, state=GapState.NEEDS_REVIEW).exists()
    assert not OutreachAttempt.objects.filter(patient_id__in=unreachable).exists()
    scheduled = CareGap.objects.filter(state=GapState.SCHEDULED)
    assert Appointment.objects.filter(gaps__in=scheduled).exists()
    assert MessageTemplate.objects.count() >= 2 * 8 * 5
    for template in MessageTemplate.objects.all():
        template.full_clean()  # every demo template passes the content-class check
