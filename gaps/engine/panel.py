"""Load what measure versions need for an organization, one chunk of patients at a time.

`plan_panel` reads once what every chunk shares: the value-set expansions the versions use and
their codes (two queries). `load_chunk` then reads one range of patient ids in a fixed number
of queries:
1. the patients with their FHIR detail;
2. their clinical records;
3. the codings of those records, one row per record (all its codings in one string).
Only the records the versions read are kept: those having a code in one of the value sets or
direct codes, plus the few record kinds some criteria read whole (encounters referenced by BP
readings, coverage).

The number of queries does not depend on the number of patients, and memory depends on the
chunk size only: `patient_chunks` walks the organization by primary key, so a million-patient
organization is evaluated in constant memory (issue 13).

Speed (issue 13: the engine must reach 90,000 patient-measure evaluations per second): every
query is an index range scan whose cost grows with the chunk, never with the organization; a
record is one tuple (`Rec`, built in one call from its row); the value-set keys and other code
sets of a record come from a cache keyed by the record's whole coding string, so records coded
alike (most of them) share the same frozensets and cost one dictionary lookup; each patient
indexes its records by value-set key (`PatientRow.by_key`), so a criterion looks up the few
records with its value set instead of scanning them all.
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import FilteredRelation, Max, Min, Q

from gaps.measures import MeasureDefinition
from gaps.models import ValueSetCode
from gaps.valuesets import select_value_sets
from patients.clinical import ClinicalCoding, ClinicalRecord
from patients.models import Organization, Patient

RECORD_FIELDS = (
    "id",
    "patient_id",
    "resource_type",
    "resource_id",
    "status",
    "intent",
    "do_not_perform",
    "encounter_class",
    "encounter_ref",
    "clinical_active",
    "verified",
    "has_timing",
    "start_at",
    "start_date",
    "start_precision",
    "end_at",
    "end_date",
    "end_precision",
    "end_open",
    "period_unknown",
    "value_type",
    "value_num",
    "value_unit",
    "value_comparator",
    "components",
)
# What a record's codings give it (frozensets, shared between records coded alike):
# keys: value-set OIDs / direct codes matched by the main code; value_keys: ... matched by
# valueCodeableConcept (and the raw "system|code"); categories, body_sites, discharge:
# raw "system|code".
CODED_FIELDS = ("keys", "value_keys", "categories", "body_sites", "discharge")

RECORD_ID = RECORD_FIELDS.index("id")
PATIENT_ID = RECORD_FIELDS.index("patient_id")
RESOURCE_TYPE = RECORD_FIELDS.index("resource_type")
RESOURCE_ID = RECORD_FIELDS.index("resource_id")
ENCOUNTER_REF = RECORD_FIELDS.index("encounter_ref")

# Separators of the coding string (ASCII unit and record separators: never in a system URI or
# a code).
FIELD_SEP = "\x1f"
CODING_SEP = "\x1e"

EMPTY: frozenset[str] = frozenset()


class Rec(namedtuple("RecFields", (*RECORD_FIELDS, *CODED_FIELDS))):
    """One clinical record as the criteria read it. A tuple: a chunk builds tens of thousands
    of them, and building a tuple from the row costs half what setting 30 attributes does.

    `start_at`, `end_at` and `components` stay as PostgreSQL sends them (text), decoded by the
    few criteria that read them; from SQLite they come decoded by the ORM. Read them through
    `instant` and `components_of` (criteria.py), which take either.
    """

    __slots__ = ()

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


def instant(value: str | dt.datetime | None) -> dt.datetime | None:
    """A stored instant as a datetime: PostgreSQL's text (see `_postgres_rows`) is parsed
    here, only where it is read; the ORM's datetime (SQLite) passes through."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


_new_rec = tuple.__new__  # Rec from a full row: no per-field work (see Rec)


@dataclass(slots=True)
class PatientRow:
    id: int
    birth_date: dt.date | None
    gender: str
    us_core_sex: str
    deceased_at: dt.datetime | None
    deceased: bool
    records: list[Rec] = field(default_factory=list)
    # Bits (PanelPlan.key_bits) of the value-set keys of the patient's records.
    mask: int = 0
    # The records by value-set key (Rec.keys), each list in the order of `records`.
    by_key: dict[str, list[Rec]] = field(default_factory=dict)
    # Coverage records (payer codes are not value-set keys), in the order of `records`; a
    # list only for the patients who have some.
    coverages: list[Rec] | tuple = ()


@dataclass
class Panel:
    patients: list[PatientRow]
    missing_value_sets: list[str]
    warnings: list[str]
    queries: int = 0
    key_bits: dict[str, int] = field(default_factory=dict)  # the plan's (see PatientRow.mask)

    def release_records(self) -> None:
        """Drop the patients and their records once every version is evaluated: the results
        keep only ids and evidence, and what is freed while the cycle collector is paused (see
        evaluate_range) is never walked by it."""
        self.patients = []


def _direct(key: str) -> tuple[str, str]:
    system, _, value = key.rpartition("|")
    return system, value


# Patients per chunk: the engine benchmark (7 measures, synthetic patients of ~5 records)
# peaks at 215 MiB of resident memory with this size, whatever the organization's size.
DEFAULT_CHUNK_SIZE = 10_000

PatientRange = tuple[int, int]  # inclusive bounds of patient ids


@dataclass
class PanelPlan:
    """What every chunk of one load shares: the value-set selection and the code index."""

    organization: Organization
    definitions: list[MeasureDefinition]
    oid_of: dict[int, str]
    direct: list[str]
    code_keys: dict[tuple[str, str], frozenset[str]]
    missing_value_sets: list[str]
    warnings: list[str]
    # Record kinds read whole, beyond value-set matches: "bp_controlled" (encounters that BP
    # readings reference), "medicare_or_65" (coverage).
    whole_kinds: frozenset[str] = frozenset()
    # Value-set key -> bits of the engine's checks that name it (see gaps.engine._Masks), so
    # a patient's mask is built as their records are loaded.
    key_bits: dict[str, int] = field(default_factory=dict)
    # Coding string -> (matched, (keys, value_keys, categories, body_sites, discharge), key
    # bits of those keys), for records of any type but Coverage (whose codes are kept raw
    # besides): filled as chunks meet new combinations (see `coded`).
    coded_cache: dict[str | None, tuple] = field(default_factory=dict)
    coverage_cache: dict[str | None, tuple] = field(default_factory=dict)

    def coded(self, resource_type: str, codings: str | None) -> tuple:
        """What a record of this type with these codings (the FIELD_SEP/CODING_SEP string
        of `_codings_by_record`) gets from them: whether a code selects it, and the values of
        CODED_FIELDS."""
        cache = self.coverage_cache if resource_type == "Coverage" else self.coded_cache
        found = cache.get(codings)
        if found is None:
            found = cache[codings] = self._code(resource_type, codings)
        return found

    def _code(self, resource_type: str, codings: str | None) -> tuple:
        code_keys = self.code_keys
        use_medication_reference = self.definitions[0].rules.medication_reference
        matched = False
        keys, value_keys, categories, body_sites, discharge = set(), set(), set(), set(), set()
        for coding in codings.split(CODING_SEP) if codings else ():
            element, system, code = coding.split(FIELD_SEP)
            found = code_keys.get((system, code))
            if element in (ClinicalCoding.Element.CODE, ClinicalCoding.Element.MEDICATION_REF):
                # A referenced Medication's code selects the record even where the rules do
                # not read it (MP2025): the record is loaded, without that key.
                matched = matched or found is not None
            if element == ClinicalCoding.Element.CODE or (
                element == ClinicalCoding.Element.MEDICATION_REF and use_medication_reference
            ):
                if found:
                    keys |= found
                if resource_type == "Coverage":
                    # Payer codes are matched by prefix (SOPT hierarchy), so keep them raw.
                    value_keys.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.VALUE:
                if found:
                    value_keys |= found
                value_keys.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.CATEGORY:
                categories.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.BODY_SITE:
                body_sites.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.DISCHARGE:
                discharge.add(f"{system}|{code}")
        key_bits, bits = self.key_bits, 0
        for key in keys:
            bits |= key_bits.get(key, 0)
        return (
            matched,
            tuple(
                frozenset(found) if found else EMPTY
                for found in (keys, value_keys, categories, body_sites, discharge)
            ),
            bits,
        )


def _postgres_rows(sql: str, params) -> list[tuple]:
    """Rows of a query straight from psycopg's cursor, without Django's per-value converters
    (at a million patients those were a third of the panel load). Instants and JSON stay
    text: turning them into objects cost more than the rest of a record together (1.2 us per
    instant), and the criteria read them for a few records only (see `instant` and
    `components_of` in criteria.py)."""
    from psycopg.types.string import TextLoader

    with transaction.atomic(), connection.cursor() as cursor:
        # These range scans' cost estimates trip PostgreSQL's JIT, which then spends longer
        # compiling than the scans take (measured 1.6 of 1.8 s per chunk).
        cursor.execute("SET LOCAL jit = off")
        raw = cursor.cursor
        raw.adapters.register_loader("timestamptz", TextLoader)
        raw.adapters.register_loader("jsonb", TextLoader)
        raw.execute(sql, params)
        return raw.fetchall()


def _fetch(queryset) -> list[tuple]:
    """The rows of a values_list queryset (see `_postgres_rows`)."""
    if connection.vendor != "postgresql":
        return list(queryset)
    return _postgres_rows(*queryset.query.sql_with_params())


def _codings_by_record(
    organization: Organization, patient_range: PatientRange | None, record_ids: list[int]
) -> dict[int, str]:
    """Every coding of the records, one string per record id: codings joined by CODING_SEP,
    each "element FIELD_SEP system FIELD_SEP code"."""
    if connection.vendor == "postgresql":
        if not record_ids:
            return {}
        # Selected by record id, never by a join on the records' patient range: the planner
        # turns that join into a scan of every coding of the organization for each chunk.
        # A chunk's records are usually consecutive ids (imported patient by patient), so
        # one index range reads their codings; a range holding other records too (other
        # organizations', other patients' re-imported later) costs only the rows it reads,
        # and those rows are never looked up. When the ids are scattered, one probe per
        # record instead (the ids as one array literal: psycopg adapts a list value by value).
        first, last = min(record_ids), max(record_ids)
        if last - first < 2 * len(record_ids):
            where, params = "record_id BETWEEN %s AND %s", [first, last]
        else:
            where = "record_id = ANY(%s::bigint[])"
            params = ["{" + ",".join(map(str, record_ids)) + "}"]
        return dict(
            _postgres_rows(
                # `where` is one of the two literals above.
                "SELECT record_id, string_agg(element || chr(31) || system || chr(31) || code, "  # noqa: S608
                f"chr(30)) FROM patients_clinicalcoding WHERE {where} GROUP BY record_id",
                params,
            )
        )
    # SQLite (tests, small organizations): the plain join, grouped here.
    codings = ClinicalCoding.objects.filter(organization=organization)
    if patient_range is not None:
        codings = codings.filter(
            record__patient_id__gte=patient_range[0], record__patient_id__lte=patient_range[1]
        )
    grouped: dict[int, list[str]] = {}
    for record_id, element, system, code in codings.values_list(
        "record_id", "element", "system", "code"
    ):
        grouped.setdefault(record_id, []).append(f"{element}{FIELD_SEP}{system}{FIELD_SEP}{code}")
    return {record_id: CODING_SEP.join(found) for record_id, found in grouped.items()}


def patient_chunks(
    organization: Organization, size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[PatientRange]:
    """Consecutive ranges of `size` patient ids of the organization (keyset walk: each step
    is one index range, never an OFFSET; only its two bounds leave the database)."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    last = 0
    while True:
        bounds = (
            Patient.objects.filter(organization=organization, id__gt=last)
            .order_by("id")
            .values("id")[:size]
            .aggregate(first=Min("id"), last=Max("id"))
        )
        if bounds["first"] is None:
            return
        yield bounds["first"], bounds["last"]
        last = bounds["last"]


def plan_panel(
    organization: Organization,
    definitions: list[MeasureDefinition],
    *,
    whole_kinds: frozenset[str] = frozenset(),
    key_bits: dict[str, int] | None = None,
) -> PanelPlan:
    """The shared part of a load for several measure versions that share value-set expansions
    and rules on medication references (measures of one measurement year)."""
    first = definitions[0]
    if any(
        (d.valueset_cutoff, d.rules.medication_reference)
        != (first.valueset_cutoff, first.rules.medication_reference)
        for d in definitions
    ):
        raise ValueError("load_panel: definitions need the same value-set cutoff and rules")
    keys = set().union(*(d.value_set_keys() for d in definitions))
    oids = sorted(k for k in keys if "|" not in k)
    direct = sorted(k for k in keys if "|" in k)
    cutoff = dt.date.fromisoformat(first.valueset_cutoff) if first.valueset_cutoff else None
    selection = select_value_sets(oids, cutoff)
    oid_of = {pk: oid for oid, pk in selection.value_set_ids.items()}
    code_keys: dict[tuple[str, str], set[str]] = {}
    for value_set_id, system, code in ValueSetCode.objects.filter(
        value_set_id__in=list(oid_of)
    ).values_list("value_set_id", "system", "code"):
        code_keys.setdefault((system, code), set()).add(oid_of[value_set_id])
    for key in direct:
        code_keys.setdefault(_direct(key), set()).add(key)
    return PanelPlan(
        organization,
        definitions,
        oid_of,
        direct,
        {code: frozenset(found) for code, found in code_keys.items()},
        selection.missing,
        selection.warnings,
        whole_kinds,
        key_bits or {},
    )


def load_panel(
    organization: Organization,
    definitions: list[MeasureDefinition],
    *,
    whole_kinds: frozenset[str] = frozenset(),
) -> Panel:
    """The whole organization in one load (small panels, tests); see `load_chunk`."""
    return load_chunk(plan_panel(organization, definitions, whole_kinds=whole_kinds))


def _patients(organization: Organization, patient_range: PatientRange | None) -> list[PatientRow]:
    people = Patient.objects.filter(organization=organization)
    detail = "fhir_detail"
    if patient_range is not None:
        people = people.filter(id__range=patient_range)
        # The range repeated on the detail side makes the join two index range scans merged;
        # without it PostgreSQL hashes every detail row of the table for each chunk.
        people = people.annotate(
            detail=FilteredRelation(
                "fhir_detail",
                condition=Q(
                    fhir_detail__patient_id__gte=patient_range[0],
                    fhir_detail__patient_id__lte=patient_range[1],
                ),
            )
        )
        detail = "detail"
    found = []
    for row in _fetch(
        people.order_by("id").values_list(
            "id",
            "birth_date",
            f"{detail}__id",
            f"{detail}__birth_date",
            f"{detail}__gender",
            f"{detail}__us_core_sex",
            f"{detail}__deceased",
            f"{detail}__deceased_at",
            "sex",
        )
    ):
        pid, birth, detail_id, fhir_birth, gender, sex_ext, dead, dead_at, sex = row
        if detail_id is None:  # registered in CareHub, never imported from FHIR
            fhir_birth, gender, sex_ext, dead = birth, sex, "", False
        found.append(
            PatientRow(
                pid,
                fhir_birth,
                gender or "",
                sex_ext or "",
                instant(dead_at),
                bool(dead),
            )
        )
    return found


def load_chunk(plan: PanelPlan, patient_range: PatientRange | None = None) -> Panel:
    """The patients whose ids lie in `patient_range` (inclusive; None: all of them) with the
    records and codings the plan's measure versions read."""
    organization = plan.organization
    people = _patients(organization, patient_range)
    patients = {patient.id: patient for patient in people}

    records = ClinicalRecord.objects.filter(organization=organization)
    if patient_range is not None:
        records = records.filter(patient_id__gte=patient_range[0], patient_id__lte=patient_range[1])
    # Ordered by patient, type and id (ClinicalRecord's ordering): the criteria report the
    # first record that qualifies, so the order is part of the result.
    rows = _fetch(records.values_list(*RECORD_FIELDS))
    codings_of = _codings_by_record(organization, patient_range, [row[RECORD_ID] for row in rows])

    # Which records the versions read is decided here rather than in SQL: plain range scans
    # cost less than a value-set join the planner turns into a scan of every coding of the
    # organization.
    referenced: set[str] = set()
    if "bp_controlled" in plan.whole_kinds:
        # MP2025 looks at the class of the encounter a reading references, whatever its type.
        referenced = {row[ENCOUNTER_REF] for row in rows if row[RESOURCE_TYPE] == "Observation"}
        referenced.discard("")
    coverage = "medicare_or_65" in plan.whole_kinds
    coded, coded_cache = plan.coded, plan.coded_cache
    owner = owner_id = records = by_key = None
    for row in rows:
        resource_type = row[RESOURCE_TYPE]
        codings = codings_of.get(row[RECORD_ID])
        # The cache inline: this loop runs once per record of the organization.
        found = coded_cache.get(codings)
        if found is None or resource_type == "Coverage":
            found = coded(resource_type, codings)
        matched, coded_fields, bits = found
        if not (
            matched
            or (resource_type == "Encounter" and row[RESOURCE_ID] in referenced)
            or (coverage and resource_type == "Coverage")
        ):
            continue
        if owner_id != row[PATIENT_ID]:  # rows come grouped by patient
            owner = patients.get(row[PATIENT_ID])
            if owner is None:
                owner_id = None
                continue
            owner_id, records, by_key = owner.id, owner.records, owner.by_key
        rec = _new_rec(Rec, row + coded_fields)
        records.append(rec)
        if bits:
            owner.mask |= bits
        if resource_type == "Coverage":
            owner.coverages = [*owner.coverages, rec]
        for key in coded_fields[0]:  # rec.keys
            found = by_key.get(key)
            if found is None:
                by_key[key] = [rec]
            else:
                found.append(rec)
    return Panel(people, plan.missing_value_sets, plan.warnings, queries=3, key_bits=plan.key_bits)
