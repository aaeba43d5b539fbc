"""The gap engine: populations and gap status of one measure version for a whole panel.

Set-based: `load_chunk` reads everything the versions need for one range of patients in a fixed
number of queries (patients, matching records, their codings); the criteria then run in memory
over each patient's few records. `evaluate_chunks` walks a whole organization chunk by chunk,
so memory depends on the chunk size, never on the organization's size. Populations follow
the MADiE cascade (measures.md 1.1 and 4): DENOM = IP; DENEX only inside DENOM; NUMER only for
DENOM and not DENEX.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from gaps.measures import MeasureDefinition

from .criteria import CRITERIA, Context, Evidence, during, encounters, evidence
from .panel import (
    DEFAULT_CHUNK_SIZE,
    Panel,
    PanelPlan,
    PatientRange,
    PatientRow,
    load_chunk,
    load_panel,
    patient_chunks,
    plan_panel,
)

US_CORE_FEMALE = "248152002"


@dataclass
class PopulationResult:
    patient_id: int
    ip: bool = False
    denom: bool = False
    denex: bool = False
    numer: bool = False
    evidence: list[Evidence] = field(default_factory=list)

    def status(self, inverse: bool) -> str:
        if not self.ip or not self.denom:
            return "not-applicable"
        if self.denex:
            return "excluded"
        closed = not self.numer if inverse else self.numer
        return "closed" if closed else "open"


@dataclass
class MeasureEvaluation:
    definition: MeasureDefinition
    results: list[PopulationResult]
    panel: Panel


def _whole_kinds(definitions: list[MeasureDefinition]) -> frozenset[str]:
    """Criteria that read record kinds beyond value-set matches (see PanelPlan.whole_kinds)."""
    kinds = {c.kind for d in definitions for c in (*d.ip_criteria, d.numerator)}
    return frozenset(kinds & {"bp_controlled", "medicare_or_65"})


def _in_ip(definition: MeasureDefinition, ctx: Context, patient: PatientRow) -> list | None:
    if patient.birth_date is None:
        return None
    low, high = definition.age
    age = ctx.year - patient.birth_date.year
    if age < low or (high is not None and age > high):
        return None
    if definition.female_only:
        if definition.rules.sex_from_extension:
            if patient.us_core_sex != US_CORE_FEMALE:
                return None
        elif patient.gender != "female":
            return None
    found = []
    if definition.encounters:
        visit = None
        for key in definition.encounters:
            for rec in encounters(patient, ctx, key):
                if during(rec, ctx.mp_start, ctx.mp_end):
                    visit = rec
                    break
            if visit is not None:
                break
        if visit is None:
            return None
        found.append(evidence("qualifying encounter", visit, visit.start_date))
    for criterion in definition.ip_criteria:
        hit = CRITERIA[criterion.kind](ctx, criterion.params, patient)
        if hit is None:
            return None
        hit.criterion = criterion.label or hit.criterion
        found.append(hit)
    return found


def _groups(definitions: list[MeasureDefinition]) -> list[list[MeasureDefinition]]:
    """Versions that share value-set expansions (one group per measurement year in practice)
    share one panel load."""
    groups: dict[tuple, list[MeasureDefinition]] = {}
    for definition in definitions:
        key = (definition.valueset_cutoff, definition.rules.medication_reference)
        groups.setdefault(key, []).append(definition)
    return list(groups.values())


def plan_groups(organization, definitions: list[MeasureDefinition]) -> list[PanelPlan]:
    return [
        plan_panel(organization, group, whole_kinds=_whole_kinds(group))
        for group in _groups(definitions)
    ]


def evaluate_range(
    plans: list[PanelPlan],
    definitions: list[MeasureDefinition],
    period_start: dt.date,
    period_end: dt.date,
    patient_range: PatientRange | None,
) -> list[MeasureEvaluation]:
    """Every version for the patients of one id range, in the order of `definitions`."""
    done = {}
    for plan in plans:
        panel = load_chunk(plan, patient_range)
        for definition in plan.definitions:
            done[definition.key] = evaluate(
                plan.organization, definition, period_start, period_end, panel=panel
            )
    return [done[d.key] for d in definitions]


def evaluate_chunks(
    organization,
    definitions: list[MeasureDefinition],
    period_start: dt.date,
    period_end: dt.date,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[tuple[PatientRange, list[MeasureEvaluation]]]:
    """The organization chunk by chunk: (patient id range, one evaluation per version)."""
    plans = plan_groups(organization, definitions)
    for patient_range in patient_chunks(organization, chunk_size):
        yield (
            patient_range,
            evaluate_range(plans, definitions, period_start, period_end, patient_range),
        )


def evaluate_many(
    organization, definitions: list[MeasureDefinition], period_start: dt.date, period_end: dt.date
) -> list[MeasureEvaluation]:
    """Every version for the whole organization in one load (small panels; large ones go
    through `evaluate_chunks`)."""
    return evaluate_range(
        plan_groups(organization, definitions), definitions, period_start, period_end, None
    )


def evaluate(
    organization,
    definition: MeasureDefinition,
    period_start: dt.date,
    period_end: dt.date,
    *,
    panel: Panel | None = None,
) -> MeasureEvaluation:
    if panel is None:
        panel = load_panel(organization, [definition], whole_kinds=_whole_kinds([definition]))
    ctx = Context(period_end.year, period_start, period_end, definition.rules)
    results = []
    numerator = definition.numerator
    for patient in panel.patients:
        result = PopulationResult(patient.id)
        results.append(result)
        ip_evidence = _in_ip(definition, ctx, patient)
        if ip_evidence is None:
            continue
        result.ip = result.denom = True
        result.evidence.extend(ip_evidence)
        for criterion in definition.exclusions:
            hit = CRITERIA[criterion.kind](ctx, criterion.params, patient)
            if hit is not None:
                hit.criterion = f"exclusion: {criterion.label or hit.criterion}"
                result.denex = True
                result.evidence.append(hit)
                break
        if result.denex:
            continue
        hit = CRITERIA[numerator.kind](ctx, numerator.params, patient)
        if hit is not None:
            result.numer = True
            hit.criterion = f"numerator: {hit.criterion}"
            result.evidence.append(hit)
    return MeasureEvaluation(definition, results, panel)


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MeasureEvaluation",
    "PopulationResult",
    "evaluate",
    "evaluate_chunks",
    "evaluate_many",
    "evaluate_range",
    "patient_chunks",
    "plan_groups",
]
