import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from gaps.care_gaps import CareGap, GapState, NextStep, SourceKind
from gaps.services import sync_catalogue
from gaps.workflow import NEXT_STEP

# The factories' gaps belong to measurement year 2026; tests that work such a gap through its
# lifecycle stand their clock inside that year with `pytest.mark.time_machine(IN_MEASUREMENT_YEAR)`,
# so they pass on any real day.
IN_MEASUREMENT_YEAR = dt.datetime(2026, 6, 16, 15, 0, tzinfo=dt.UTC)


def measure(cms: str = "CMS130", version: str = "MP2026"):
    return sync_catalogue()[(cms, version)]


class CareGapFactory(DjangoModelFactory):
    """A gap as the engine opens it; `state=` puts it anywhere in the lifecycle."""

    class Meta:
        model = CareGap

    organization = factory.SelfAttribute("patient.organization")
    measure_code = "CMS130"
    measure = factory.LazyAttribute(lambda gap: measure(gap.measure_code))
    period_start = dt.date(2026, 1, 1)
    period_end = dt.date(2026, 12, 31)
    primary_source = SourceKind.ENGINE
    state = GapState.IDENTIFIED
    state_changed_at = factory.LazyFunction(timezone.now)
    due_date = dt.date(2026, 12, 31)
    next_step = factory.LazyAttribute(
        lambda gap: NEXT_STEP[gap.state][0] if gap.state in NEXT_STEP else ""
    )
    next_step_due = factory.LazyAttribute(
        lambda gap: timezone.localdate() if gap.state in NEXT_STEP else None
    )


__all__ = ["IN_MEASUREMENT_YEAR", "CareGapFactory", "NextStep", "measure"]
