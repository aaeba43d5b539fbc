"""When a service must have happened to close a measure's gap in a period (its look-back)."""

from __future__ import annotations

import datetime as dt

from gaps.measures.base import Criterion, MeasureDefinition


def _earliest_start(criterion: Criterion, period_start: dt.date) -> dt.date | None:
    params = criterion.params
    found = []
    if "years_back" in params:
        found.append(dt.date(period_start.year - params["years_back"], params.get("month", 1), 1))
    for alternative in params.get("alternatives", ()):
        start = _earliest_start(alternative, period_start)
        if start is not None:
            found.append(start)
    return min(found) if found else None


def closure_window(
    definition: MeasureDefinition, period_start: dt.date, period_end: dt.date, birth_date: dt.date
) -> tuple[dt.date, dt.date]:
    """The first and last date of service that satisfy the numerator for this period.

    The widest look-back of the numerator's alternatives (a colonoscopy counts for ten years, a
    FOBT only in the period); childhood immunizations count from birth; the wellness visit
    within the 12 months up to the period end.
    """
    numerator = definition.numerator
    if numerator.kind == "childhood_immunizations":
        return birth_date, period_end
    if numerator.kind == "wellness_visit":
        return period_end - dt.timedelta(days=364), period_end
    return _earliest_start(numerator, period_start) or period_start, period_end
