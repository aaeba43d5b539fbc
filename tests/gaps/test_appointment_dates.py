"""An appointment date must be a real booking: not in the past, not a far-future placeholder."""

import datetime as dt

import pytest

from carehub.errors import DomainError
from gaps.care_gaps import GapState
from gaps.workflow import mark_scheduled
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]
TODAY = IN_MEASUREMENT_YEAR.date()


@pytest.mark.parametrize(
    "appointment_on", [dt.date(9999, 12, 31), TODAY + dt.timedelta(days=732)], ids=str
)
def test_an_appointment_years_ahead_is_refused(patient_a, agent_a, appointment_on):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    with pytest.raises(DomainError, match="more than two years ahead"):
        mark_scheduled(gap, actor=agent_a, appointment_on=appointment_on)
    gap.refresh_from_db()
    assert gap.state == GapState.OUTREACH and gap.scheduled_for is None


def test_an_appointment_within_two_years_is_booked(patient_a, agent_a):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    booked = mark_scheduled(gap, actor=agent_a, appointment_on=TODAY + dt.timedelta(days=700))
    assert booked.state == GapState.SCHEDULED
