"""The gap engine: populations and gap status of one measure version for a whole panel.

Set-based: `load_panel` reads everything the version needs in a fixed number of queries
(value sets, patients, matching records, their codings); the criteria then run in memory over
each patient's few records. Populations follow the MADiE cascade (measures.md 1.1 and 4):
DENOM = IP; DENEX only inside DENOM; NUMER only for DENOM and not DENEX.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q

from gaps.measures import MeasureDefinition

from .criteria import CRITERIA, Context, Evidence, during, encounters, evidence
from .panel import Panel, PatientRow, load_panel

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


def _whole_types(definitions: list[MeasureDefinition], organization) -> Q | None:
    """Record kinds some criteria read beyond value-set matches."""
    from patients.clinical import ClinicalRecord

    kinds = {c.kind for d in definitions for c in (*d.ip_criteria, d.numerator)}
    q = None
    if "bp_controlled" in kinds:
        # MP2025 looks at the class of the encounter a reading references, whatever its type.
        refs = ClinicalRecord.objects.filter(
            organization=organization, resource_type="Observation"
        ).exclude(encounter_ref="")
        q = Q(resource_type="Encounter", resource_id__in=refs.values("encounter_ref"))
    if "medicare_or_65" in kinds:
        coverage = Q(resource_type="Coverage")
        q = coverage if q is None else q | coverage
    return q


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


def evaluate_many(
    organization, definitions: list[MeasureDefinition], period_start: dt.date, period_end: dt.date
) -> list[MeasureEvaluation]:
    """Evaluate several measure versions, loading the panel once per group of versions that
    share value-set expansions (one group per measurement year in practice)."""
    groups: dict[tuple, list[MeasureDefinition]] = {}
    for definition in definitions:
        key = (definition.valueset_cutoff, definition.rules.medication_reference)
        groups.setdefault(key, []).append(definition)
    done = {}
    for group in groups.values():
        panel = load_panel(organization, group, whole_types=_whole_types(group, organization))
        for definition in group:
            done[definition.key] = evaluate(
                organization, definition, period_start, period_end, panel=panel
            )
    return [done[d.key] for d in definitions]


def evaluate(
    organization,
    definition: MeasureDefinition,
    period_start: dt.date,
    period_end: dt.date,
    *,
    panel: Panel | None = None,
) -> MeasureEvaluation:
    if panel is None:
        panel = load_panel(
            organization, [definition], whole_types=_whole_types([definition], organization)
        )
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


__all__ = ["MeasureEvaluation", "PopulationResult", "evaluate", "evaluate_many"]
