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
import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from gaps.measures import Criterion, MeasureDefinition
from gaps.measures.base import named_keys

from .criteria import CRITERIA, Context, Evidence, during, evidence
from .panel import (
    DEFAULT_CHUNK_SIZE,
    Panel,
    PanelPlan,
    PatientRange,
    PatientRow,
    Rec,
    load_chunk,
    load_panel,
    patient_chunks,
    plan_panel,
)

US_CORE_FEMALE = "248152002"


class PopulationResult(NamedTuple):
    """Populations of one patient for one version. A tuple, never changed once built: a chunk
    holds one per patient and version, and the most common answer, "not in the IP", is one
    object per patient that every version leaving the patient out shares."""

    patient_id: int
    ip: bool = False
    denom: bool = False
    denex: bool = False
    numer: bool = False
    evidence: tuple[Evidence, ...] = ()

    def status(self, inverse: bool) -> str:
        if not self.ip or not self.denom:
            return "not-applicable"
        if self.denex:
            return "excluded"
        closed = not self.numer if inverse else self.numer
        return "closed" if closed else "open"


# PopulationResult from its six fields in one call, without the generated __new__ (a chunk
# builds one per patient).
_new_result = tuple.__new__


@dataclass
class MeasureEvaluation:
    definition: MeasureDefinition
    results: list[PopulationResult]
    panel: Panel


def _whole_kinds(definitions: list[MeasureDefinition]) -> frozenset[str]:
    """Criteria that read record kinds beyond value-set matches (see PanelPlan.whole_kinds)."""
    kinds = {c.kind for d in definitions for c in (*d.ip_criteria, d.numerator)}
    return frozenset(kinds & {"bp_controlled", "medicare_or_65"})


# Criterion kinds that can hold only for a patient having a record coded in one of the value
# sets or direct codes their parameters name. A patient with none of them (most patients, for
# most criteria) is answered "no" without running the criterion. Not here: glycemic_poor_control
# (holds when there is no result at all) and medicare_or_65 (holds on age).
_NEED_A_KEYED_RECORD = frozenset(
    {
        "hospice",
        "palliative",
        "frailty",
        "nursing_home",
        "condition_starts_by_end",
        "procedure_ends_by_end",
        "encounter_starts_by_end",
        "condition_overlaps",
        "mastectomy_both_sides",
        "condition_starts_in_childhood",
        "lab_result",
        "procedure_end_within",
        "study_end_within",
        "bp_controlled",
        "childhood_immunizations",
        "wellness_visit",
    }
)


def _named_keys(criterion: Criterion) -> frozenset[str] | None:
    """Keys one of which a patient's records must carry for `criterion` to hold, or None when
    it can hold without any (see _NEED_A_KEYED_RECORD). Every key the parameters name, the
    same walk as MeasureDefinition.value_set_keys: a superset is safe, it only skips less
    often."""
    if criterion.kind == "any_of":
        alternatives = [_named_keys(a) for a in criterion.params["alternatives"]]
        if any(keys is None for keys in alternatives):
            return None
        return frozenset().union(*alternatives)
    if criterion.kind not in _NEED_A_KEYED_RECORD:
        return None
    return frozenset(named_keys(criterion))


_UNKNOWN = object()  # not in a patient's memo yet


@dataclass(frozen=True)
class _Check:
    """One criterion of a version, ready to run on patients."""

    criterion: Criterion
    run: Callable[[Context, dict, PatientRow], Evidence | None]
    # This check's bit in a patient's mask (see _Masks): unset, the criterion cannot hold.
    bit: int
    # Key of its answer in a patient's memo when several versions share the criterion
    # (hospice, palliative care, frailty, nursing home); None when it is the version's own.
    shared: tuple[int, int] | None

    def answer(self, ctx: Context, patient: PatientRow, memo: dict) -> Evidence | None:
        """The criterion's evidence for the patient, or None. Evidence may be shared between
        versions through the memo: callers copy it, never change it."""
        if self.shared is None:
            return self.run(ctx, self.criterion.params, patient)
        found = memo.get(self.shared, _UNKNOWN)
        if found is _UNKNOWN:
            found = memo[self.shared] = self.run(ctx, self.criterion.params, patient)
        return found


class _Masks:
    """Which checks can hold for a patient, as one integer: bit i is set when check i names a
    key (value set or direct code) of one of the patient's records, or can hold without any
    (see _named_keys). One pass over a patient's few keys answers "no" for most checks of
    every version without calling them."""

    def __init__(self):
        self.count = 0
        self.always = 0
        self.of_key: dict[str, int] = {}

    def new_bit(self, needs: frozenset[str] | None) -> int:
        bit = 1 << self.count
        self.count += 1
        if needs is None:
            self.always |= bit
        else:
            for key in needs:
                self.of_key[key] = self.of_key.get(key, 0) | bit
        return bit

    def of(self, patient: PatientRow) -> int:
        mask, of_key = self.always, self.of_key
        for key in patient.by_key:
            mask |= of_key.get(key, 0)
        return mask


@dataclass
class _Version:
    """A measure version compiled for one evaluation: its context and checks."""

    index: int  # in the evaluation's definitions
    definition: MeasureDefinition
    ctx: Context
    visit_bit: int  # see _Masks; 0 when the version needs no qualifying visit
    visit_memo: tuple[int, int]
    ip: list[_Check]
    exclusions: list[_Check]
    numerator: _Check
    # Bits every patient in the IP has in their mask: the visit's and each IP criterion's.
    required: int = 0

    def __post_init__(self):
        self.required = self.visit_bit
        for check in self.ip:
            self.required |= check.bit

    def admits(self, age: int, patient: PatientRow) -> bool:
        """Whether the version's age and sex let the patient into the IP (age in the MP year,
        measures.md 1.2)."""
        definition = self.definition
        low, high = definition.age
        if age < low or (high is not None and age > high):
            return False
        if not definition.female_only:
            return True
        if definition.rules.sex_from_extension:
            return patient.us_core_sex == US_CORE_FEMALE
        return patient.gender == "female"


def _compile(
    definitions: list[MeasureDefinition], period_start: dt.date, period_end: dt.date
) -> tuple[list[_Version], _Masks]:
    """The versions ready to run, and the masks of their checks. A criterion object that
    several versions use with the same record rules is answered once per patient (memo key:
    its identity and the rules')."""
    uses = Counter(
        (id(c), id(d.rules)) for d in definitions for c in (*d.ip_criteria, *d.exclusions)
    )
    masks = _Masks()

    def check(criterion: Criterion, rules) -> _Check:
        key = (id(criterion), id(rules))
        return _Check(
            criterion,
            CRITERIA[criterion.kind],
            masks.new_bit(_named_keys(criterion)),
            key if uses[key] > 1 else None,
        )

    versions = [
        _Version(
            index,
            d,
            Context(period_end.year, period_start, period_end, d.rules),
            masks.new_bit(frozenset(d.encounters)) if d.encounters else 0,
            (id(d.encounters), id(d.rules)),
            [check(c, d.rules) for c in d.ip_criteria],
            [check(c, d.rules) for c in d.exclusions],
            check(d.numerator, d.rules),
        )
        for index, d in enumerate(definitions)
    ]
    return versions, masks


def _qualifying_visit(version: _Version, patient: PatientRow, memo: dict) -> Rec | None:
    """The first encounter of the version's visit value sets during the MP (several versions
    share the adult outpatient list: looked up once per patient)."""
    visit = memo.get(version.visit_memo, _UNKNOWN)
    if visit is not _UNKNOWN:
        return visit
    ctx = version.ctx
    statuses, by_key = ctx.rules.encounter_statuses, patient.by_key
    visit = None
    for key in version.definition.encounters:
        # criteria.encounters inline (this runs for every adult of most versions)
        for rec in by_key.get(key, ()):
            if (
                rec.resource_type == "Encounter"
                and rec.status in statuses
                and during(rec, ctx.mp_start, ctx.mp_end)
            ):
                visit = rec
                break
        if visit is not None:
            break
    memo[version.visit_memo] = visit
    return visit


def _evaluate_patient(
    version: _Version, patient: PatientRow, memo: dict, mask: int
) -> PopulationResult | None:
    """Populations of one patient the version admits (see `_Version.admits`) and whose mask
    has the version's required bits, or None when out of the IP (MADiE cascade: DENOM = IP;
    DENEX only inside DENOM; NUMER only for DENOM and not DENEX)."""
    ctx = version.ctx
    visit = None
    if version.visit_bit:
        visit = _qualifying_visit(version, patient, memo)
        if visit is None:
            return None
    found = []
    for check in version.ip:
        hit = check.answer(ctx, patient, memo)
        if hit is None:
            return None
        found.append(Evidence(check.criterion.label or hit.criterion, hit.resource, hit.date))
    # The visit's evidence only now: most patients with a visit miss a required diagnosis.
    if visit is not None:
        found.insert(0, evidence("qualifying encounter", visit, visit.start_date))
    for check in version.exclusions:
        if not mask & check.bit:
            continue
        hit = check.answer(ctx, patient, memo)
        if hit is not None:
            label = check.criterion.label or hit.criterion
            found.append(Evidence(f"exclusion: {label}", hit.resource, hit.date))
            return _new_result(PopulationResult, (patient.id, True, True, True, False, (*found,)))
    numerator = version.numerator
    hit = numerator.answer(ctx, patient, memo) if mask & numerator.bit else None
    if hit is None:
        return _new_result(PopulationResult, (patient.id, True, True, False, False, (*found,)))
    found.append(Evidence(f"numerator: {hit.criterion}", hit.resource, hit.date))
    return _new_result(PopulationResult, (patient.id, True, True, False, True, (*found,)))


def _evaluate_panel(
    panel: Panel, definitions: list[MeasureDefinition], period_start: dt.date, period_end: dt.date
) -> list[MeasureEvaluation]:
    """Every version for every patient of the panel, patient by patient so that what versions
    share is found once per patient (the memo lives as long as one patient's turn).

    Every result starts as the patient's shared "not in the IP"; a version runs its criteria
    only for the patients its age and sex admit and whose mask has its required bits (most
    patients, for most versions, are left out by these two integer tests)."""
    versions, masks = _compile(definitions, period_start, period_end)
    patients = panel.patients
    outside = [
        _new_result(PopulationResult, (p.id, False, False, False, False, ())) for p in patients
    ]
    results = [outside.copy() for _ in versions]
    year = period_end.year
    # Masks built by the load when the panel's plan had these versions' key bits.
    masks_loaded, always = bool(panel.key_bits) and panel.key_bits == masks.of_key, masks.always
    # (birth year, gender, US Core sex) -> the versions admitting such a patient: a few hundred
    # combinations for a whole organization.
    admitted_by: dict[tuple, tuple[_Version, ...]] = {}
    for index, patient in enumerate(patients):
        birth = patient.birth_date
        if birth is None:
            continue
        gate = (birth.year, patient.gender, patient.us_core_sex)
        admitted = admitted_by.get(gate)
        if admitted is None:
            age = year - birth.year
            admitted = admitted_by[gate] = tuple(v for v in versions if v.admits(age, patient))
        if not admitted:
            continue
        mask = patient.mask | always if masks_loaded else masks.of(patient)
        memo: dict = {}
        for version in admitted:
            required = version.required
            if mask & required == required:
                found = _evaluate_patient(version, patient, memo, mask)
                if found is not None:
                    results[version.index][index] = found
    return [
        MeasureEvaluation(definition, found, panel)
        for definition, found in zip(definitions, results, strict=True)
    ]


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a chunk is loaded and evaluated. A chunk builds a few
    hundred thousand objects that all stay alive until it is done, and the collector would
    walk them (and every object of the process) again and again: measured 40 % of the
    engine's time. Nothing built here forms a reference cycle, so reference counting frees it
    all the same; collection resumes when the chunk is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
        plan_panel(
            organization,
            group,
            whole_kinds=_whole_kinds(group),
            # The bits _evaluate_panel will give these versions' checks (the same for any
            # period: the masks depend on the criteria only).
            key_bits=_compile(group, dt.date.min, dt.date.max)[1].of_key,
        )
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
    with _cycle_collector_paused():
        for plan in plans:
            panel = load_chunk(plan, patient_range)
            for evaluation in _evaluate_panel(panel, plan.definitions, period_start, period_end):
                done[evaluation.definition.key] = evaluation
            panel.release_records()
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
    return _evaluate_panel(panel, [definition], period_start, period_end)[0]


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
