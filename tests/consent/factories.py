import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from consent.models import ChangePath, Consent


class ConsentFactory(DjangoModelFactory):
    """A consent as an import would leave it (tests of services go through the services)."""

    class Meta:
        model = Consent

    organization = factory.SelfAttribute("patient.organization")
    kind = Consent.Kind.SMS_TCPA
    status = Consent.Status.GRANTED
    method = Consent.Method.IMPORTED
    captured_by = Consent.CapturedBy.SYSTEM
    path = ChangePath.IMPORT
    effective_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=30))
    changed_at = factory.LazyFunction(timezone.now)
    evidence = "import batch 1"
