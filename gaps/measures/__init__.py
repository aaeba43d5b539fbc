"""Measure definitions as data, and how a measurement year picks a version."""

from __future__ import annotations

from gaps.measures.base import Criterion, MeasureDefinition, RecordRules
from gaps.measures.catalogue import MEASURES

# Priority weight of a measure's gaps in worklists (outcome measures above screenings).
MEASURE_WEIGHTS = {
    "CMS122": 3,
    "CMS165": 3,
    "CMS130": 2,
    "CMS125": 2,
    "CMS124": 2,
    "CMS117": 2,
    "AWV": 1,
}
INVERSE_MEASURES = frozenset(m.cms for m in MEASURES if m.inverse)
MEASURE_CODES = tuple(dict.fromkeys(m.cms for m in MEASURES))


class UnknownMeasure(LookupError):
    pass


def versions_of(cms: str) -> list[MeasureDefinition]:
    found = sorted((m for m in MEASURES if m.cms == cms), key=lambda m: m.first_year)
    if not found:
        raise UnknownMeasure(f"Unknown measure {cms!r}; known: {', '.join(MEASURE_CODES)}")
    return found


def pick_version(cms: str, year: int, override: str | None = None) -> tuple[MeasureDefinition, str]:
    """The version for a measurement year, and a warning ('' if none).

    The latest version whose first year is on or before `year`; a year before every version
    uses the earliest one, with a warning. `override` ("MP2026") wins.
    """
    versions = versions_of(cms)
    if override:
        for definition in versions:
            if definition.version == override:
                return definition, ""
        known = ", ".join(d.version for d in versions)
        raise UnknownMeasure(f"{cms} has no version {override!r}; known: {known}")
    eligible = [d for d in versions if d.first_year <= year]
    if not eligible:
        return versions[0], (
            f"{cms}: no version for {year}; using the earliest ({versions[0].version})"
        )
    return eligible[-1], ""


__all__ = [
    "INVERSE_MEASURES",
    "MEASURES",
    "MEASURE_CODES",
    "MEASURE_WEIGHTS",
    "Criterion",
    "MeasureDefinition",
    "RecordRules",
    "UnknownMeasure",
    "pick_version",
    "versions_of",
]
