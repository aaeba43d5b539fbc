"""Load what measure versions need for an organization, one chunk of patients at a time.

`plan_panel` reads once what every chunk shares: the value-set expansions the versions use and
their codes (two queries). `load_chunk` then reads one range of patient ids in a fixed number
of queries:
1. the patients with their FHIR detail;
2. their clinical records having a code in any of those value sets or direct codes, plus the
   few record kinds some criteria read whole (encounters referenced by BP readings, coverage);
3. every coding of those records.

The number of queries does not depend on the number of patients, and memory depends on the
chunk size only: `patient_chunks` walks the organization by primary key, so a million-patient
organization is evaluated in constant memory (issue 13).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction

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


RESOURCE_TYPE = RECORD_FIELDS.index("resource_type")
RESOURCE_ID = RECORD_FIELDS.index("resource_id")
ENCOUNTER_REF = RECORD_FIELDS.index("encounter_ref")


class Rec:
    """One clinical record as the criteria read it (plain attributes: fast in tight loops)."""

    __slots__ = (*RECORD_FIELDS, "keys", "value_keys", "categories", "body_sites", "discharge")

    def __init__(self, row: tuple):
        (
            self.id,
            self.patient_id,
            self.resource_type,
            self.resource_id,
            self.status,
            self.intent,
            self.do_not_perform,
            self.encounter_class,
            self.encounter_ref,
            self.clinical_active,
            self.verified,
            self.has_timing,
            self.start_at,
            self.start_date,
            self.start_precision,
            self.end_at,
            self.end_date,
            self.end_precision,
            self.end_open,
            self.period_unknown,
            self.value_type,
            self.value_num,
            self.value_unit,
            self.value_comparator,
            self.components,
        ) = row  # the order of RECORD_FIELDS
        if isinstance(self.components, str):  # raw from PostgreSQL (see _fetch)
            self.components = json.loads(self.components) if self.components != "[]" else []
        self.keys: set[str] = set()  # value-set OIDs / direct codes matched by the main code
        self.value_keys: set[str] = set()  # ... matched by valueCodeableConcept
        self.categories: set[str] = set()  # "system|code"
        self.body_sites: set[str] = set()
        self.discharge: set[str] = set()

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


@dataclass
class PatientRow:
    id: int
    source_id: str
    mrn: str
    birth_date: dt.date | None
    gender: str
    us_core_sex: str
    deceased_at: dt.datetime | None
    deceased: bool
    records: list[Rec] = field(default_factory=list)


@dataclass
class Panel:
    patients: list[PatientRow]
    missing_value_sets: list[str]
    warnings: list[str]
    queries: int = 0


def _direct(key: str) -> tuple[str, str]:
    system, _, value = key.rpartition("|")
    return system, value


# Patients per chunk: about 15 KB each in memory, so ~150 MB per chunk whatever the panel size.
DEFAULT_CHUNK_SIZE = 10_000

PatientRange = tuple[int, int]  # inclusive bounds of patient ids


@dataclass
class PanelPlan:
    """What every chunk of one load shares: the value-set selection and the code index."""

    organization: Organization
    definitions: list[MeasureDefinition]
    oid_of: dict[int, str]
    direct: list[str]
    code_keys: dict[tuple[str, str], set[str]]
    missing_value_sets: list[str]
    warnings: list[str]
    # Record kinds read whole, beyond value-set matches: "bp_controlled" (encounters that BP
    # readings reference), "medicare_or_65" (coverage).
    whole_kinds: frozenset[str] = frozenset()


def _fetch(queryset) -> list[tuple]:
    """The rows of a values_list queryset. On PostgreSQL straight from the cursor, with the C
    timestamp loader and JSON decoded only when not empty: at a million patients the ORM's
    per-row converters were a third of the panel load."""
    if connection.vendor != "postgresql":
        return list(queryset)
    from psycopg.types.datetime import TimestamptzLoader

    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # These range scans' cost estimates trip PostgreSQL's JIT, which then spends longer
        # compiling than the scans take (measured 1.6 of 1.8 s per chunk).
        cursor.execute("SET LOCAL jit = off")
        raw = cursor.cursor
        raw.adapters.register_loader("timestamptz", TimestamptzLoader)
        raw.execute(sql, params)
        return raw.fetchall()


def patient_chunks(
    organization: Organization, size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[PatientRange]:
    """Consecutive ranges of `size` patient ids of the organization (keyset walk: each step
    is one index range, never an OFFSET)."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    last = 0
    while True:
        ids = list(
            Patient.objects.filter(organization=organization, id__gt=last)
            .order_by("id")
            .values_list("id", flat=True)[:size]
        )
        if not ids:
            return
        yield ids[0], ids[-1]
        last = ids[-1]


def plan_panel(
    organization: Organization,
    definitions: list[MeasureDefinition],
    *,
    whole_kinds: frozenset[str] = frozenset(),
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
    code_keys: dict[tuple[str, str], set[str]] = defaultdict(set)
    for value_set_id, system, code in ValueSetCode.objects.filter(
        value_set_id__in=list(oid_of)
    ).values_list("value_set_id", "system", "code"):
        code_keys[(system, code)].add(oid_of[value_set_id])
    for key in direct:
        code_keys[_direct(key)].add(key)
    return PanelPlan(
        organization,
        definitions,
        oid_of,
        direct,
        dict(code_keys),
        selection.missing,
        selection.warnings,
        whole_kinds,
    )


def load_panel(
    organization: Organization,
    definitions: list[MeasureDefinition],
    *,
    whole_kinds: frozenset[str] = frozenset(),
) -> Panel:
    """The whole organization in one load (small panels, tests); see `load_chunk`."""
    return load_chunk(plan_panel(organization, definitions, whole_kinds=whole_kinds))


def load_chunk(plan: PanelPlan, patient_range: PatientRange | None = None) -> Panel:
    """The patients whose ids lie in `patient_range` (inclusive; None: all of them) with the
    records and codings the plan's measure versions read."""
    organization = plan.organization
    records = ClinicalRecord.objects.filter(organization=organization)
    codings = ClinicalCoding.objects.filter(organization=organization)
    if patient_range is not None:
        low, high = patient_range
        records = records.filter(patient_id__gte=low, patient_id__lte=high)
        codings = codings.filter(record__patient_id__gte=low, record__patient_id__lte=high)

    patients: dict[int, PatientRow] = {}
    people = Patient.objects.filter(organization=organization)
    if patient_range is not None:
        people = people.filter(id__range=patient_range)
    for row in people.values_list(
        "id",
        "source_id",
        "mrn",
        "birth_date",
        "fhir_detail__id",
        "fhir_detail__birth_date",
        "fhir_detail__gender",
        "fhir_detail__us_core_sex",
        "fhir_detail__deceased",
        "fhir_detail__deceased_at",
        "sex",
    ):
        pid, source_id, mrn, birth, detail_id, fhir_birth, gender, sex_ext, dead, dead_at, sex = row
        if detail_id is None:  # registered in CareHub, never imported from FHIR
            fhir_birth, gender, sex_ext, dead = birth, sex, "", False
        patients[pid] = PatientRow(
            pid, source_id, mrn, fhir_birth, gender or "", sex_ext or "", dead_at, bool(dead)
        )

    # Which records the versions read is decided here rather than in SQL: two plain range
    # scans per chunk (codings, records) cost less than a value-set join the planner turns
    # into a scan of every coding of the organization.
    code_keys = plan.code_keys
    by_record: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    matched: set[int] = set()
    selecting = (ClinicalCoding.Element.CODE, ClinicalCoding.Element.MEDICATION_REF)
    for record_id, element, system, code in _fetch(
        codings.values_list("record_id", "element", "system", "code")
    ):
        by_record[record_id].append((element, system, code))
        if element in selecting and (system, code) in code_keys:
            matched.add(record_id)
    rows = _fetch(records.values_list(*RECORD_FIELDS))
    referenced: set[str] = set()
    if "bp_controlled" in plan.whole_kinds:
        # MP2025 looks at the class of the encounter a reading references, whatever its type.
        referenced = {row[ENCOUNTER_REF] for row in rows if row[RESOURCE_TYPE] == "Observation"}
        referenced.discard("")
    coverage = "medicare_or_65" in plan.whole_kinds

    use_medication_reference = plan.definitions[0].rules.medication_reference
    for row in rows:
        record_id, resource_type = row[0], row[RESOURCE_TYPE]
        if not (
            record_id in matched
            or (resource_type == "Encounter" and row[RESOURCE_ID] in referenced)
            or (coverage and resource_type == "Coverage")
        ):
            continue
        rec = Rec(row)
        owner = patients.get(rec.patient_id)
        if owner is not None:
            owner.records.append(rec)
        for element, system, code in by_record.get(record_id, ()):
            if element == ClinicalCoding.Element.CODE or (
                element == ClinicalCoding.Element.MEDICATION_REF and use_medication_reference
            ):
                found = code_keys.get((system, code))
                if found:
                    rec.keys |= found
                if resource_type == "Coverage":
                    # Payer codes are matched by prefix (SOPT hierarchy), so keep them raw.
                    rec.value_keys.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.VALUE:
                found = code_keys.get((system, code))
                if found:
                    rec.value_keys |= found
                rec.value_keys.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.CATEGORY:
                rec.categories.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.BODY_SITE:
                rec.body_sites.add(f"{system}|{code}")
            elif element == ClinicalCoding.Element.DISCHARGE:
                rec.discharge.add(f"{system}|{code}")
    return Panel(
        list(patients.values()),
        plan.missing_value_sets,
        plan.warnings,
        queries=3,
    )
