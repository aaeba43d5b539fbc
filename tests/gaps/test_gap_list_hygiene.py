"""The gap list is a worklist: open work of periods that can still close, by priority; ended
periods leave it with a visible reason; filters by period and owner; name-prefix search."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from gaps.care_gaps import GapState
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from tests.patients.factories import PatientFactory

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]

CHANGELIST = reverse("admin:gaps_caregap_changelist")
LAST_YEAR = {
    "period_start": dt.date(2025, 1, 1),
    "period_end": dt.date(2025, 12, 31),
    "due_date": dt.date(2025, 12, 31),
}


def listed(client, **params):
    return list(client.get(CHANGELIST, params).context["cl"].result_list)


def test_the_list_opens_on_open_work_and_ended_periods_leave_it_with_the_reason(
    client, agent_a, org_a
):
    patient = PatientFactory(organization=org_a)
    current = CareGapFactory(patient=patient)
    closed = CareGapFactory(patient=patient, measure_code="CMS125", state=GapState.CLOSED)
    stale = CareGapFactory(patient=patient, measure_code="CMS124", **LAST_YEAR)
    documented_late = CareGapFactory(
        patient=patient,
        measure_code="CMS122",
        state=GapState.COMPLETED,
        completed_on=dt.date(2025, 11, 20),
        **LAST_YEAR,
    )
    client.force_login(agent_a)
    assert set(listed(client)) == {current, documented_late}
    assert listed(client, work="ended") == [stale]
    body = client.get(CHANGELIST, {"work": "ended"}).content.decode()
    assert "period ended: can no longer close" in body
    assert closed in listed(client, work="finished")
    assert listed(client, state__exact="closed") == [closed]
    assert set(listed(client, work="all", period="2025")) == {stale, documented_late}


def test_open_work_is_ordered_by_due_date_then_measure_weight(client, agent_a, org_a):
    today = timezone.localdate()
    patient = PatientFactory(organization=org_a)
    later = CareGapFactory(patient=patient, next_step_due=today + dt.timedelta(days=3))
    light = CareGapFactory(
        patient=patient, measure_code="AWV", measure_weight=1, next_step_due=today
    )
    heavy = CareGapFactory(
        patient=patient, measure_code="CMS165", measure_weight=3, next_step_due=today
    )
    client.force_login(agent_a)
    assert listed(client) == [heavy, light, later]


def test_search_by_name_prefix_and_filter_by_owner(client, agent_a, org_a, org_b):
    alvarez = PatientFactory(organization=org_a, family_name="Alvarez", given_name="Rosa")
    other = PatientFactory(organization=org_a, family_name="Brown")
    foreign = PatientFactory(organization=org_b, family_name="Alvarado")
    mine = CareGapFactory(patient=alvarez, owner=agent_a)
    theirs = CareGapFactory(patient=other)
    CareGapFactory(patient=foreign)
    client.force_login(agent_a)
    assert listed(client, q="alva") == [mine]
    assert listed(client, q="alvarez, ro") == [mine]
    assert listed(client, owner="mine") == [mine]
    assert listed(client, owner="unassigned") == [theirs]
