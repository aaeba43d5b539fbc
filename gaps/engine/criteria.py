"""The criterion kinds measure definitions are built from (measures.md sections 1, 2 and 3).

Each kind is a function `(ctx, params, patient) -> Evidence | None` over the records already
loaded for the whole panel (see panel.py): no queries here. Day-level tests compare the local
calendar dates stored at import; instant tests compare UTC instants with the precision rule of
measures.md 1.6 B (a less precise value equal to the bound is unknown, i.e. false).

Records are found through the patient's index by value-set key (`PatientRow.by_key`), never by
scanning every record: a patient has a few records, but the engine asks for a value set some
hundred times per patient (seven measures, their exclusions and numerators), and nearly every
answer is "none". Each index list keeps the patient's record order, so the first record that
qualifies (the evidence) is the one a scan would find.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gaps.measures.base import FINAL, RecordRules
from patients.clinical import Precision
from patients.fhir.timing import add_years

from .panel import PatientRow, Rec, instant

_NONE: tuple = ()  # what a lookup finds for a value set the patient has no record of

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category|"
LABORATORY = OBS_CATEGORY + "laboratory"
IMAGING = OBS_CATEGORY + "imaging"
SURVEY = OBS_CATEGORY + "survey"
SYMPTOM_STATUSES = frozenset({"preliminary", *FINAL})
REQUEST_STATUSES = frozenset({"active", "completed"})


@dataclass(slots=True)
class Evidence:
    criterion: str
    resource: str = ""
    date: dt.date | None = None

    def as_json(self) -> dict:
        return {
            "criterion": self.criterion,
            "resource": self.resource,
            "date": self.date.isoformat() if self.date else None,
        }


@dataclass
class Context:
    year: int
    mp_start: dt.date
    mp_end: dt.date
    rules: RecordRules

    def __post_init__(self):
        self.mp_start_at = dt.datetime.combine(self.mp_start, dt.time(), tzinfo=dt.UTC)
        self.mp_end_at = dt.datetime.combine(
            self.mp_end, dt.time(23, 59, 59, 999000), tzinfo=dt.UTC
        )
        # (years, month) -> first day: the look-back criteria ask it for every patient.
        self._back: dict[tuple[int, int], dt.date] = {}

    def years_back(self, years: int, month: int = 1) -> dt.date:
        found = self._back.get((years, month))
        if found is None:
            found = self._back[years, month] = dt.date(self.year - years, month, 1)
        return found


def age_in_year(patient: PatientRow, year: int) -> int | None:
    return None if patient.birth_date is None else year - patient.birth_date.year


def age_on(birth: dt.date, day: dt.date) -> int:
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


def evidence(label: str, rec: Rec, day: dt.date | None = None) -> Evidence:
    return Evidence(label, rec.reference, day or latest_date(rec) or rec.start_date)


# -- record filters (measures.md 1.4) ---------------------------------------------------------


def with_key(patient: PatientRow, key: str) -> Iterable[Rec]:
    """The patient's records whose code is in value set (or is the direct code) `key`."""
    return patient.by_key.get(key, _NONE)


def encounters(patient, ctx, key) -> Iterable[Rec]:
    found = patient.by_key.get(key)
    if not found:
        return _NONE
    statuses = ctx.rules.encounter_statuses
    return [r for r in found if r.resource_type == "Encounter" and r.status in statuses]


def procedures(patient, ctx, key) -> Iterable[Rec]:
    found = patient.by_key.get(key)
    if not found:
        return _NONE
    statuses = ctx.rules.procedure_statuses
    return [r for r in found if r.resource_type == "Procedure" and r.status in statuses]


def observations(patient, key, statuses=FINAL, category: str | None = None) -> Iterable[Rec]:
    found = patient.by_key.get(key)
    if not found:
        return _NONE
    return [
        r
        for r in found
        if r.resource_type == "Observation"
        and r.status in statuses
        and (category is None or category in r.categories)
    ]


def lab_results(patient, ctx, key):
    return observations(patient, key, category=LABORATORY if ctx.rules.lab_needs_category else None)


def studies(patient, ctx, key):
    return observations(patient, key, category=IMAGING if ctx.rules.study_needs_imaging else None)


def assessments(patient, ctx, key):
    return observations(
        patient, key, category=SURVEY if ctx.rules.assessment_needs_survey else None
    )


def conditions(patient, ctx, key) -> Iterable[Rec]:
    found = patient.by_key.get(key)
    if not found:
        return _NONE
    verify = ctx.rules.verified_conditions
    return [r for r in found if r.resource_type == "Condition" and (r.verified or not verify)]


def _any_key(keys: list[str], fn, patient, ctx) -> Iterable[Rec]:
    """Records of any of the keys, key by key, each record once."""
    if len(keys) == 1:
        return fn(patient, ctx, keys[0])
    return _each_once(keys, fn, patient, ctx)


def _each_once(keys: list[str], fn, patient, ctx) -> Iterable[Rec]:
    seen = set()
    for key in keys:
        for rec in fn(patient, ctx, key):
            if rec.id not in seen:
                seen.add(rec.id)
                yield rec


def _keys(params: dict, name: str = "vs") -> list[str]:
    if f"{name}s" in params:
        return list(params[f"{name}s"])
    value = params[name]
    return [value] if isinstance(value, str) else list(value)


# -- interval semantics (measures.md 1.5, 1.6) --------------------------------------------------


def latest_date(r: Rec) -> dt.date | None:
    if not r.has_timing:
        return None
    if r.end_date is not None and not r.end_open:
        return r.end_date
    return r.start_date


def earliest_date(r: Rec) -> dt.date | None:
    if not r.has_timing:
        return None
    if r.start_date is not None:
        return r.start_date
    return None if r.end_open else r.end_date


def during(r: Rec, lo: dt.date, hi: dt.date) -> bool:
    return (
        r.has_timing
        and r.start_date is not None
        and r.end_date is not None
        and not r.end_open
        and r.start_date >= lo
        and r.end_date <= hi
    )


def overlaps(r: Rec, lo: dt.date, hi: dt.date) -> bool:
    if not r.has_timing:
        return False
    if r.start_date is None:
        return r.end_date is not None and not r.end_open and lo <= r.end_date <= hi
    if r.start_date > hi:
        return False
    return r.end_open or (r.end_date is not None and r.end_date >= lo)


def ends_within(r: Rec, lo: dt.date, hi: dt.date) -> bool:
    return r.has_timing and not r.end_open and r.end_date is not None and lo <= r.end_date <= hi


def _truncate(at: dt.datetime, precision: int) -> dt.datetime:
    if precision == Precision.MINUTE:
        return at.replace(second=0, microsecond=0)
    return at.replace(microsecond=0)


def _compare(point: tuple, bound: dt.datetime) -> int | None:
    """-1 / 0 / 1, or None when equal at the value's coarser precision (unknown)."""
    at, day, precision = point
    if precision >= Precision.MILLISECOND:
        return (at > bound) - (at < bound)
    if precision in (Precision.SECOND, Precision.MINUTE):
        a, b = _truncate(at, precision), _truncate(bound, precision)
    elif precision == Precision.DAY:
        a, b = day, bound.date()
    elif precision == Precision.MONTH:
        a, b = (day.year, day.month), (bound.year, bound.month)
    else:
        a, b = day.year, bound.year
    if a == b:
        return None
    return -1 if a < b else 1


def le_instant(point: tuple, bound: dt.datetime) -> bool:
    result = _compare(point, bound)
    return result is not None and result <= 0


def ge_instant(point: tuple, bound: dt.datetime) -> bool:
    result = _compare(point, bound)
    return result is not None and result >= 0


def start_point(r: Rec) -> tuple | None:
    if r.start_date is None:
        return None
    return (instant(r.start_at), r.start_date, r.start_precision)


def end_point(r: Rec) -> tuple | None:
    if r.end_date is None or r.end_open:
        return None
    return (instant(r.end_at), r.end_date, r.end_precision)


_NO_PREVALENCE = object()


def prevalence(r: Rec):
    """(start or None = -inf, end or None = +inf), or _NO_PREVALENCE (measures.md 1.5)."""
    if not r.has_timing:
        return _NO_PREVALENCE
    start, end = start_point(r), end_point(r)
    if not r.clinical_active and end is None:
        return _NO_PREVALENCE
    return start, end


def prevalence_overlaps_days(r: Rec, lo: dt.date, hi: dt.date) -> bool:
    p = prevalence(r)
    if p is _NO_PREVALENCE:
        return False
    start, end = p
    return (start is None or start[1] <= hi) and (end is None or end[1] >= lo)


def prevalence_overlaps_instants(r: Rec, lo: dt.datetime, hi: dt.datetime) -> bool:
    p = prevalence(r)
    if p is _NO_PREVALENCE:
        return False
    start, end = p
    return (start is None or le_instant(start, hi)) and (end is None or ge_instant(end, lo))


def prevalence_starts_by(r: Rec, ctx: Context, instant: bool) -> bool:
    p = prevalence(r)
    if p is _NO_PREVALENCE:
        return False
    start = p[0]
    if start is None:
        return True
    return le_instant(start, ctx.mp_end_at) if instant else start[1] <= ctx.mp_end


def prevalence_start_date(r: Rec) -> dt.date | None:
    p = prevalence(r)
    if p is _NO_PREVALENCE or p[0] is None:
        return None
    return p[0][1]


# -- shared blocks (measures.md 2) -------------------------------------------------------------


def _window(ctx: Context, params: dict) -> tuple[dt.date, dt.date]:
    if params.get("window") == "last_12_months":
        return add_years(ctx.mp_end, -1), ctx.mp_end
    return ctx.mp_start, ctx.mp_end


def hospice(ctx: Context, params: dict, patient: PatientRow) -> Evidence | None:
    lo, hi = _window(ctx, params)
    label = "hospice"
    discharge_codes = params["discharge_codes"]
    for r in encounters(patient, ctx, params["inpatient_vs"]):
        if not r.discharge.isdisjoint(discharge_codes) and ends_within(r, lo, hi):
            return evidence(label, r)
    for r in encounters(patient, ctx, params["encounter_vs"]):
        if overlaps(r, lo, hi):
            return evidence(label, r)
    for r in assessments(patient, ctx, params["assessment_vs"]):
        if params["yes_code"] in r.value_keys and overlaps(r, lo, hi):
            return evidence(label, r)
    for r in with_key(patient, params["order_vs"]):
        if (
            r.resource_type == "ServiceRequest"
            and r.status in REQUEST_STATUSES
            and r.intent in ctx.rules.service_intents
            and r.start_date is not None
            and lo <= r.start_date <= hi
        ):
            return evidence(label, r)
    for r in procedures(patient, ctx, params["order_vs"]):
        if overlaps(r, lo, hi):
            return evidence(label, r)
    for r in conditions(patient, ctx, params["diagnosis_vs"]):
        if prevalence_overlaps_days(r, lo, hi):
            return evidence(label, r)
    return None


def palliative(ctx: Context, params: dict, patient: PatientRow) -> Evidence | None:
    lo, hi = ctx.mp_start, ctx.mp_end
    label = "palliative care"
    for r in assessments(patient, ctx, params["assessment_vs"]):
        if overlaps(r, lo, hi):
            return evidence(label, r)
    for r in conditions(patient, ctx, params["diagnosis_vs"]):
        if prevalence_overlaps_days(r, lo, hi):
            return evidence(label, r)
    for r in encounters(patient, ctx, params["encounter_vs"]):
        if overlaps(r, lo, hi):
            return evidence(label, r)
    for r in procedures(patient, ctx, params["procedure_vs"]):
        if overlaps(r, lo, hi):
            return evidence(label, r)
    return None


def _frailty(ctx: Context, params: dict, patient: PatientRow) -> Evidence | None:
    lo, hi = ctx.mp_start, ctx.mp_end
    label = "frailty"
    rules = ctx.rules
    for r in with_key(patient, params["device_vs"]):
        if (
            r.resource_type == "DeviceRequest"
            and r.status in REQUEST_STATUSES
            and r.intent in rules.device_intents
            and not (rules.device_checks_do_not_perform and r.do_not_perform)
            and r.start_date is not None
            and lo <= r.start_date <= hi
        ):
            return evidence(label, r)
    for r in assessments(patient, ctx, params["equipment_vs"]):
        if params["device_vs"] in r.value_keys and ends_within(r, lo, hi):
            return evidence(label, r)
    for r in conditions(patient, ctx, params["diagnosis_vs"]):
        if prevalence_overlaps_days(r, lo, hi):
            return evidence(label, r)
    for r in encounters(patient, ctx, params["encounter_vs"]):
        if overlaps(r, lo, hi):
            return evidence(label, r)
    for r in observations(patient, params["symptom_vs"], statuses=SYMPTOM_STATUSES):
        if overlaps(r, lo, hi):
            return evidence(label, r)
    return None


def _illness_or_dementia(ctx: Context, params: dict, patient: PatientRow) -> Evidence | None:
    lo, hi = dt.date(ctx.year - 1, 1, 1), ctx.mp_end
    for r in conditions(patient, ctx, params["illness_vs"]):
        start = prevalence_start_date(r)
        if start is not None and lo <= start <= hi:
            return evidence("advanced illness", r, start)
    for r in with_key(patient, params["dementia_vs"]):
        if (
            r.resource_type == "MedicationRequest"
            and r.status == "active"
            and r.intent in ctx.rules.medication_intents
            and (r.period_unknown or overlaps(r, lo, hi))
        ):
            return evidence("dementia medication", r)
    return None


def frailty(ctx: Context, params: dict, patient: PatientRow) -> Evidence | None:
    age = age_in_year(patient, ctx.year)
    if age is None or age < 66:
        return None
    frail = _frailty(ctx, params, patient)
    if frail is None:
        return None
    if params["rule"] == "B" and age >= 81:
        return frail
    illness = _illness_or_dementia(ctx, params, patient)
    return illness and Evidence("advanced illness and frailty", illness.resource, illness.date)


def nursing_home(ctx: Context, params: dict, patient: PatientRow) -> Evidence | None:
    age = age_in_year(patient, ctx.year)
    if age is None or age < 66:
        return None
    latest = None
    for r in assessments(patient, ctx, params["housing_vs"]):
        end = end_point(r)
        if end is None or end[1] > ctx.mp_end:
            continue
        if latest is None or end[0] > end_point(latest)[0]:
            latest = r
    if latest is not None and params["nursing_home_code"] in latest.value_keys:
        return evidence("long-term nursing home", latest)
    return None


# -- measure-specific criteria -----------------------------------------------------------------


def condition_starts_by_end(ctx, params, patient):
    for r in _any_key(_keys(params), conditions, patient, ctx):
        if prevalence_starts_by(r, ctx, params["instant"]):
            return evidence("condition", r, r.start_date)
    return None


def procedure_ends_by_end(ctx, params, patient):
    for r in _any_key(_keys(params), procedures, patient, ctx):
        end = end_point(r)
        if end is None:
            continue
        if le_instant(end, ctx.mp_end_at) if params["instant"] else end[1] <= ctx.mp_end:
            return evidence("procedure", r)
    return None


def encounter_starts_by_end(ctx, params, patient):
    for r in _any_key(_keys(params), encounters, patient, ctx):
        start = start_point(r)
        if start is not None and le_instant(start, ctx.mp_end_at):
            return evidence("encounter", r, r.start_date)
    return None


def condition_overlaps(ctx, params, patient):
    for r in _any_key(_keys(params), conditions, patient, ctx):
        if params["window"] == "first_half":
            # [Jan 1, Jul 1) as the engine does it: <= Jun 30 23:59:59.999 (measures.md 3.5)
            hi = dt.datetime(ctx.year, 6, 30, 23, 59, 59, 999000, tzinfo=dt.UTC)
            ok = prevalence_overlaps_instants(r, ctx.mp_start_at, hi)
        elif params["instant"]:
            ok = prevalence_overlaps_instants(r, ctx.mp_start_at, ctx.mp_end_at)
        else:
            ok = prevalence_overlaps_days(r, ctx.mp_start, ctx.mp_end)
        if ok:
            return evidence("condition", r, r.start_date)
    return None


def mastectomy_both_sides(ctx, params, patient):
    found = []
    by_key = patient.by_key
    for side in params["sides"]:
        hit = None
        # Two value sets, in record order: scan the records, when the patient has either.
        if side["condition_vs"] in by_key or side["unspecified_vs"] in by_key:
            for r in patient.records:
                if r.resource_type != "Condition" or (
                    ctx.rules.verified_conditions and not r.verified
                ):
                    continue
                on_side = side["condition_vs"] in r.keys or (
                    side["unspecified_vs"] in r.keys and side["body_site"] in r.body_sites
                )
                if on_side and prevalence_starts_by(r, ctx, instant=True):
                    hit = r
                    break
        if hit is None:
            for r in procedures(patient, ctx, side["procedure_vs"]):
                end = end_point(r)
                if end is not None and le_instant(end, ctx.mp_end_at):
                    hit = r
                    break
        if hit is None:
            return None
        found.append(hit)
    return evidence("bilateral mastectomy (right and left)", found[0])


def condition_starts_in_childhood(ctx, params, patient):
    if patient.birth_date is None:
        return None
    lo, hi = patient.birth_date, add_years(patient.birth_date, 2)
    for r in _any_key(_keys(params), conditions, patient, ctx):
        start = prevalence_start_date(r)
        if start is not None and lo <= start <= hi:
            return evidence("condition in the first two years", r, start)
    return None


def any_of(ctx, params, patient):
    best = None
    for alternative in params["alternatives"]:
        found = CRITERIA[alternative.kind](ctx, alternative.params, patient)
        if found is not None:
            found.criterion = alternative.label or found.criterion
            if best is None or (found.date or dt.date.min) > (best.date or dt.date.min):
                best = found
    return best


def lab_result(ctx, params, patient):
    lo, hi = ctx.years_back(params["years_back"]), ctx.mp_end
    best = None
    for r in _any_key(_keys(params), lab_results, patient, ctx):
        day = latest_date(r)
        if not r.value_type or day is None or not lo <= day <= hi:
            continue
        if params.get("min_age") is not None and (
            patient.birth_date is None or age_on(patient.birth_date, day) < params["min_age"]
        ):
            continue
        if best is None or day > best.date:
            best = evidence("lab result", r, day)
    return best


def procedure_end_within(ctx, params, patient):
    lo, hi = ctx.years_back(params["years_back"]), ctx.mp_end
    best = None
    for r in _any_key(_keys(params), procedures, patient, ctx):
        if ends_within(r, lo, hi) and (best is None or r.end_date > best.date):
            best = evidence("procedure", r, r.end_date)
    return best


def study_end_within(ctx, params, patient):
    lo, hi = ctx.years_back(params["years_back"], params.get("month", 1)), ctx.mp_end
    best = None
    for r in _any_key(_keys(params), studies, patient, ctx):
        if ends_within(r, lo, hi) and (best is None or r.end_date > best.date):
            best = evidence("study", r, r.end_date)
    return best


_PERCENT_PER_UNIT = {"%": 1.0, "mmol/mol": 0.1}


def _numeric(value, unit, comparator, per_unit):
    """The value in the target unit, or None when not a plain convertible Quantity."""
    if value is None or comparator:
        return None
    factor = per_unit.get(unit)
    return None if factor is None else value * factor


def glycemic_poor_control(ctx, params, patient):
    """NUMER (poor control) of CMS122: the last day's lowest result > 9 %, or no result."""
    results = []
    for r in _any_key(_keys(params), lab_results, patient, ctx):
        day = latest_date(r)
        if day is not None and ctx.mp_start <= day <= ctx.mp_end:
            results.append((day, r))
    if not results:
        return Evidence("no glycemic status assessment in the period")
    last_day = max(day for day, _ in results)
    on_day = [r for day, r in results if day == last_day]

    def rank(r: Rec):
        # Nulls first (measures.md 1.7): no value at all before a non-quantity value before
        # the lowest number.
        if not r.value_type:
            return (0, 0.0)
        number = (
            _numeric(r.value_num, r.value_unit, r.value_comparator, _PERCENT_PER_UNIT)
            if r.value_type == "quantity"
            else None
        )
        if number is None:
            return (1, 0.0) if r.value_type != "quantity" or r.value_num is None else (2, 0.0)
        return (3, number)

    picked = min(on_day, key=rank)
    kind, number = rank(picked)
    if kind == 0:
        return evidence("latest result has no value", picked, last_day)
    if kind == 3 and number > params["threshold"]:
        return evidence("latest result > 9%", picked, last_day)
    return None


def components_of(r: Rec) -> list[dict]:
    """The record's components: JSON text as PostgreSQL gives it (decoded here, for the few
    readings a criterion looks into), or the list the ORM already decoded."""
    if isinstance(r.components, str):
        return json.loads(r.components)
    return r.components or []


def _component_value(components: list[dict], code: str) -> float | None:
    for component in components:
        if code in component.get("codes", []):
            return _numeric(
                component.get("value"),
                component.get("unit"),
                component.get("comparator"),
                {"mm[Hg]": 1.0},
            )
    return None


def bp_controlled(ctx, params, patient):
    # observations(patient, panel_vs) and latest_date inline, and the readings of the last
    # day kept as they come: this runs for every patient in CMS165's IP.
    found = patient.by_key.get(params["panel_vs"])
    if not found:
        return None
    mp_start, mp_end = ctx.mp_start, ctx.mp_end
    excluded, union_2026 = params["excluded_classes"], params["union_2026"]
    # The encounters by id and the stays only once a reading needs them.
    encounters_by_id = stays = None
    last_day, on_day = None, []
    for r in found:
        if r.resource_type != "Observation" or r.status not in FINAL or not r.has_timing:
            continue
        day = r.end_date if r.end_date is not None and not r.end_open else r.start_date
        if day is None:
            continue
        linked = None
        if r.encounter_ref:
            if encounters_by_id is None:
                encounters_by_id = {
                    e.resource_id: e for e in patient.records if e.resource_type == "Encounter"
                }
            linked = encounters_by_id.get(r.encounter_ref)
        ok = mp_start <= day <= mp_end and not (
            linked is not None and linked.encounter_class in excluded
        )
        if union_2026 and not ok:
            if stays is None:
                stays = [
                    *encounters(patient, ctx, params["inpatient_vs"]),
                    *encounters(patient, ctx, params["ed_vs"]),
                ]
            ok = not any(
                s.start_date is not None
                and s.start_date <= day
                and (s.end_open or (s.end_date is not None and day <= s.end_date))
                for s in stays
            )
        if not ok:
            continue
        if last_day is None or day > last_day:
            last_day, on_day = day, [r]
        elif day == last_day:
            on_day.append(r)
    if last_day is None:
        return None
    systolic_code, diastolic_code = params["systolic"], params["diastolic"]
    systolic = diastolic = None  # the lowest of the day's readings
    for r in on_day:
        components = components_of(r)
        high = _component_value(components, systolic_code)
        low = _component_value(components, diastolic_code)
        if high is None or low is None:
            return None
        systolic = high if systolic is None else min(systolic, high)
        diastolic = low if diastolic is None else min(diastolic, low)
    if systolic < 140 and diastolic < 90:
        return evidence("blood pressure < 140/90", on_day[0], last_day)
    return None


def _dose_dates(patient, ctx, imm_keys, proc_keys, imm_window, proc_window) -> set[dt.date]:
    """Days of doses: completed Immunizations coded in `imm_keys` in `imm_window`, Procedures
    coded in `proc_keys` in `proc_window`."""
    dates = set()
    for keys, resource_type, window in (
        (imm_keys, "Immunization", imm_window),
        (proc_keys, "Procedure", proc_window),
    ):
        statuses = (
            ("completed",) if resource_type == "Immunization" else ctx.rules.procedure_statuses
        )
        for key in keys:
            for r in with_key(patient, key):
                if r.resource_type != resource_type or r.status not in statuses:
                    continue
                day = earliest_date(r)
                if day is not None and window[0] <= day <= window[1]:
                    dates.add(day)
    return dates


def childhood_immunizations(ctx, params, patient):
    birth = patient.birth_date
    if birth is None:
        return None
    second = add_years(birth, 2)
    windows = {
        "W42": (birth + dt.timedelta(days=42), second),
        "W180": (birth + dt.timedelta(days=180), second),
        "Y0-2": (birth, second),
        "Y1-2": (add_years(birth, 1), second),
    }

    def condition_in_childhood(keys) -> bool:
        for r in _any_key(keys, conditions, patient, ctx):
            start = prevalence_start_date(r)
            if start is not None and birth <= start <= second:
                return True
        return False

    for component in params["components"]:
        window = windows[component["window"]]
        proc_window = windows[component.get("procedure_window", component["window"])]
        if condition_in_childhood(component["condition_vss"]):
            continue
        if component.get("all_conditions_vss") and all(
            condition_in_childhood([key]) for key in component["all_conditions_vss"]
        ):
            continue
        pooled: set[dt.date] = set()
        required = component["schedules"][0]["min"]
        for schedule in component["schedules"]:
            dates = _dose_dates(
                patient, ctx, schedule["imm_vss"], schedule["proc_vss"], window, proc_window
            )
            if dates:
                required = max(required, schedule["min"])
            pooled |= dates
        if len(pooled) >= required:
            continue
        if component.get("laiv_imm_vss") and pooled:
            laiv = _dose_dates(
                patient,
                ctx,
                component["laiv_imm_vss"],
                component["laiv_proc_vss"],
                (second, second),
                (second, second),
            )
            if laiv:
                continue
        newborn = component.get("newborn_procedure_vs")
        if newborn:
            births = _dose_dates(
                patient, ctx, [], [newborn], window, (birth, birth + dt.timedelta(days=7))
            )
            if births and len({d for d in pooled if d > min(births)}) >= 2:
                continue
        return None
    return Evidence("all ten vaccine series complete", "", None)


def medicare_or_65(ctx, params, patient):
    if patient.deceased and (
        patient.deceased_at is None or patient.deceased_at.date() <= ctx.mp_end
    ):
        return None
    if (
        patient.birth_date is not None
        and age_on(patient.birth_date, ctx.mp_end) >= params["min_age"]
    ):
        return Evidence("65 or older", "", None)
    if not patient.coverages:
        return None
    system, _, prefix = params["medicare_vs"].rpartition("|")
    for r in patient.coverages:
        if r.status not in {"active", ""}:
            continue
        # SOPT code 1 (Medicare) or any of its children (11, 111, ...).
        if any(k.startswith(f"{system}|{prefix}") for k in r.value_keys) and overlaps(
            r, ctx.mp_end, ctx.mp_end
        ):
            return evidence("Medicare coverage", r)
    return None


def wellness_visit(ctx, params, patient):
    lo, hi = add_years(ctx.mp_end, -1) + dt.timedelta(days=1), ctx.mp_end
    best = None
    candidates = list(encounters(patient, ctx, params["encounter_vs"]))
    for key in params["procedure_vss"]:
        candidates.extend(procedures(patient, ctx, key))
    for r in candidates:
        day = latest_date(r)
        if day is not None and lo <= day <= hi and (best is None or day > best.date):
            best = evidence("wellness visit", r, day)
    return best


CRITERIA: dict[str, Callable[[Context, dict, PatientRow], Evidence | None]] = {
    "hospice": hospice,
    "palliative": palliative,
    "frailty": frailty,
    "nursing_home": nursing_home,
    "condition_starts_by_end": condition_starts_by_end,
    "procedure_ends_by_end": procedure_ends_by_end,
    "encounter_starts_by_end": encounter_starts_by_end,
    "condition_overlaps": condition_overlaps,
    "mastectomy_both_sides": mastectomy_both_sides,
    "condition_starts_in_childhood": condition_starts_in_childhood,
    "any_of": any_of,
    "lab_result": lab_result,
    "procedure_end_within": procedure_end_within,
    "study_end_within": study_end_within,
    "glycemic_poor_control": glycemic_poor_control,
    "bp_controlled": bp_controlled,
    "childhood_immunizations": childhood_immunizations,
    "medicare_or_65": medicare_or_65,
    "wellness_visit": wellness_visit,
}
