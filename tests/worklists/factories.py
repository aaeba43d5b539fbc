import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from carehub.history import get_system_user
from tests.patients.factories import PatientFactory
from worklists.models import RISK_RANK, ItemKind, RiskTier, WorkItem
from worklists.queues import ensure_default_queues


def queue_for(organization, kind=ItemKind.OUTREACH_CALL):
    return ensure_default_queues(organization, actor=get_system_user())[kind]


class WorkItemFactory(DjangoModelFactory):
    """An unassigned open item about a patient of its own (so claims take one item each)."""

    class Meta:
        model = WorkItem

    class Params:
        organization = None
        tier = RiskTier.LOW

    patient = factory.LazyAttribute(lambda o: PatientFactory(organization=o.organization))
    kind = ItemKind.OUTREACH_CALL
    queue = factory.LazyAttribute(lambda o: queue_for(o.patient.organization, o.kind))
    reason = "Reach the patient to book the service"
    risk_rank = factory.LazyAttribute(lambda o: RISK_RANK[o.tier])
    due_date = factory.LazyFunction(timezone.localdate)
    measure_weight = 1
    created_at = factory.LazyFunction(timezone.now)
    sla_due_at = factory.LazyAttribute(lambda o: o.created_at + dt.timedelta(hours=24))

    @factory.lazy_attribute
    def organization_id(self):
        return self.patient.organization_id
