"""The scale dataset (domain.md 9): a million patients with clinical data and five million gaps.

How it is made fast and still honest:
- a template of a few hundred synthetic patients goes through the real FHIR import
  (`carehub.synthetic` bundles, codes drawn from the loaded value sets), so the clinical rows
  are exactly what an import writes;
- every other patient is a clone of a template patient (new MRN, name, FHIR id), written with
  PostgreSQL COPY in batches: patients and their FHIR detail, clinical records and codings,
  care gaps spread over every workflow state, and one source per gap;
- tracked tables (patients, gaps, gap sources) get their history set-based in the same
  transaction through `carehub.history.copy_with_history`, as the seed's acting user.

- outreach attempts (20 per patient for the 20,000,000 of domain.md 9): the two gap-sequence
  texts of the year and agents' calls with their outcomes, logged as done. They are not linked
  to gaps one by one (that many-to-many would double the rows for no reader of the dataset).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from carehub.history import copy_with_history, is_tracked

BATCH = 50_000  # patients per transaction
FIRST_NAMES = ["Ann", "Bob", "Carla", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "June"]
# Workflow states with their share of the seeded gaps (out of 100).
STATE_SHARES = [
    ("identified", 36),
    ("in_review", 10),
    ("validated", 6),
    ("outreach", 20),
    ("scheduled", 8),
    ("completed", 4),
    ("needs_review", 2),
    ("closed", 8),
    ("not_a_gap", 3),
    ("declined", 2),
    ("unreachable", 1),
]
NEXT_STEP = {
    "identified": "review_records",
    "in_review": "review_records",
    "validated": "first_outreach",
    "outreach": "next_attempt",
    "scheduled": "attend_visit",
    "completed": "obtain_documentation",
    "needs_review": "coordinator_review",
}
SOURCES = [("engine", "engine", 60), ("payer_list", "Blue Horizon MA", 25), ("ehr_list", "EHR", 15)]


ATTEMPT_OUTCOMES = ["no_answer", "left_voicemail", "reached_scheduled", "reached_declined",
                    "no_answer", "wrong_number", "left_voicemail", "reached_scheduled"]  # fmt: skip


@dataclass
class ScaleReport:
    organization_slug: str
    attempts: int = 0
    patients: int = 0
    records: int = 0
    codings: int = 0
    gaps: int = 0
    sources: int = 0
    seconds: float = 0.0
    by_state: dict = field(default_factory=dict)


def _refuse_tracked(model) -> None:
    if is_tracked(model):
        raise ValueError(f"{model.__name__} keeps history: use copy_with_history")


def _copy(model, columns: list[str], rows: Iterable) -> int:
    """COPY into a table without history (clinical rows, FHIR detail: their provenance is the
    import run they point at)."""
    _refuse_tracked(model)
    count = 0
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _columns(model, explicit: dict) -> tuple[list[str], list]:
    """Every concrete column of `model`: the explicit ones first, the rest at their defaults
    (so a field added later does not break the seed)."""
    columns, defaults = list(explicit), []
    for model_field in model._meta.concrete_fields:
        if model_field.attname in explicit or model_field.primary_key:
            continue
        columns.append(model_field.column)
        value = model_field.get_default()
        if isinstance(value, list | dict):
            value = json.dumps(value)
        defaults.append(value)
    return columns, defaults


def _next_ids(model, count: int) -> list[int]:
    """Take `count` ids from the model's sequence (nextval: the application role may use a
    sequence, not set it). The table is locked against other writers first, until the batch
    commits, so the ids taken are above every row already there (copy_with_history relies on
    it to find the copied rows)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


@dataclass
class Template:
    patients: list[tuple]  # (birth_date, sex, detail values, [record rows], [[coding rows]])


def _template(
    organization, actor, size: int, year: int, seed: int
) -> tuple[Template, int, list[str], list[str]]:
    from carehub.synthetic import Codes, synthetic_bundle
    from patients.clinical import ClinicalCoding, ClinicalRecord, FhirPatientDetail
    from patients.fhir.importer import import_documents
    from patients.models import Patient

    codes, rng = Codes(), random.Random(seed)
    documents = [
        (f"template-{i}.json", json.dumps(synthetic_bundle(rng, codes, year)).encode())
        for i in range(size)
    ]
    run = import_documents(documents, organization=organization, actor=actor, source="seed_scale")
    if run.status != "succeeded":
        raise RuntimeError(f"the template import failed: {run.report[:500]}")
    record_fields = [
        f.attname
        for f in ClinicalRecord._meta.concrete_fields
        if f.attname not in ("id", "organization_id", "patient_id", "import_run_id")
    ]
    detail_fields = [
        f.attname
        for f in FhirPatientDetail._meta.concrete_fields
        if f.attname not in ("id", "patient_id", "import_run_id")
    ]
    codings: dict[int, list[tuple]] = {}
    for row in ClinicalCoding.objects.filter(record__organization=organization).values_list(
        "record_id", "element", "system", "code"
    ):
        codings.setdefault(row[0], []).append(row[1:])
    patients = []
    for patient in Patient.objects.filter(organization=organization).order_by("id"):
        detail = FhirPatientDetail.objects.filter(patient=patient).values_list(*detail_fields)
        records = []
        for values in ClinicalRecord.objects.filter(patient=patient).values_list(
            "id", *record_fields
        ):
            record = [json.dumps(v) if isinstance(v, list | dict) else v for v in values[1:]]
            records.append((record, codings.get(values[0], [])))
        patients.append((patient.birth_date, patient.sex, detail.first(), records))
    return Template(patients), run.pk, record_fields, detail_fields


def _patient_rows(template: Template, ids, picks, organization_id, now, defaults):
    for pid, pick in zip(ids, picks, strict=True):
        birth, sex, _, _ = template.patients[pick]
        yield (
            pid, organization_id, f"S{pid:09d}", f"scale-{pid}",
            FIRST_NAMES[pid % len(FIRST_NAMES)], f"Scale{pid % 100_000:05d}", birth, sex,
            f"M{pid:09d}", now, now, *defaults,
        )  # fmt: skip


def _copy_records(template: Template, ids, picks, organization_id, run_id, columns):
    """The template patients' clinical records and codings, cloned for each new patient."""
    from patients.clinical import ClinicalCoding, ClinicalRecord

    count = sum(len(template.patients[pick][3]) for pick in picks)
    record_ids = iter(_next_ids(ClinicalRecord, count))
    codings: list[tuple] = []

    def rows():
        for pid, pick in zip(ids, picks, strict=True):
            for values, record_codings in template.patients[pick][3]:
                record_id = next(record_ids)
                yield (record_id, organization_id, pid, run_id, *values)
                codings.extend((record_id, organization_id, *c) for c in record_codings)

    records = _copy(ClinicalRecord, columns, rows())
    coding_columns = ["record_id", "organization_id", "element", "system", "code"]
    return records, _copy(ClinicalCoding, coding_columns, codings)


def _attempt_rows(ids, per_patient: int, organization_id, actor_id, year: int, defaults):
    """Two gap-sequence texts of the year, then agents' calls, spread over the year."""
    start = dt.datetime(year, 1, 2, 14, tzinfo=dt.UTC)
    for pid in ids:
        for k in range(per_patient):
            when = start + dt.timedelta(days=(pid * 7 + k * 17) % 360, minutes=k)
            if k < 2:
                step, window, channel, status, outcome = (
                    ("gap_first", "gap_second")[k],
                    str(year),
                    "sms",
                    "sent",
                    "delivered",
                )
            else:
                step, window, channel, status = (
                    "agent_call",
                    f"{when.isoformat()}#{k}",
                    "phone",
                    "logged",
                )
                outcome = ATTEMPT_OUTCOMES[(pid + k) % len(ATTEMPT_OUTCOMES)]
            yield (
                organization_id, pid, step, window, channel, status, outcome, k < 2, actor_id,
                when, when, when, when, *defaults,
            )  # fmt: skip


def seed_scale(
    *,
    slug: str,
    patients: int,
    gaps_per_patient: int,
    actor,
    attempts_per_patient: int = 0,
    template_size: int = 500,
    year: int | None = None,
    seed: int = 13,
    progress: Callable[[Iterable], Iterator] = iter,
) -> ScaleReport:
    from gaps.measures import MEASURE_CODES, MEASURE_WEIGHTS, pick_version
    from gaps.models import CareGap, GapSource
    from gaps.services import sync_catalogue
    from patients.clinical import ClinicalCoding, ClinicalRecord, FhirPatientDetail
    from patients.models import Organization, Patient
    from patients.services import create_organization

    if connection.vendor != "postgresql":
        raise ValueError("seed_scale writes with COPY: it needs PostgreSQL (DATABASE_URL)")
    if Organization.objects.filter(slug=slug).exists():
        raise ValueError(f"organization {slug!r} exists already: choose another --slug")
    if not 0 <= gaps_per_patient <= len(MEASURE_CODES):
        raise ValueError(f"gaps per patient: 0 to {len(MEASURE_CODES)} (one per measure)")
    started = timezone.now()
    year = year or started.year
    report = ScaleReport(slug)
    organization = create_organization(
        slug=slug, name=f"Scale {slug}", kind="aco", actor=actor, reason="seed_scale"
    )
    template, run_id, record_fields, detail_fields = _template(
        organization, actor, min(template_size, patients), year, seed
    )
    report.patients = len(template.patients)
    catalogue = sync_catalogue()
    measures = [catalogue[pick_version(cms, year)[0].key] for cms in MEASURE_CODES]
    states = [state for state, share in STATE_SHARES for _ in range(share)]
    sources = [(kind, name) for kind, name, share in SOURCES for _ in range(share)]
    period = (dt.date(year, 1, 1), dt.date(year, 12, 31))
    today = timezone.localdate()

    patient_explicit = {
        "id": None, "organization_id": organization.pk, "mrn": None, "source_id": None,
        "given_name": None, "family_name": None, "birth_date": None, "sex": None,
        "member_id": None, "created_at": started, "updated_at": started,
    }  # fmt: skip
    patient_columns, patient_defaults = _columns(Patient, patient_explicit)
    detail_columns = ["patient_id", "import_run_id", *detail_fields]
    record_columns = ["id", "organization_id", "patient_id", "import_run_id", *record_fields]
    gap_explicit = dict.fromkeys(
        ["id", "organization_id", "patient_id", "measure_code", "measure_id", "period_start",
         "period_end", "primary_source", "state", "state_changed_at", "next_step",
         "next_step_due", "due_date", "measure_weight", "not_a_gap_reason", "scheduled_for",
         "completed_on", "closed_at", "created_at"]
    )  # fmt: skip
    gap_columns, gap_defaults = _columns(CareGap, gap_explicit)
    source_explicit = dict.fromkeys(["gap_id", "kind", "name", "due_date", "reported_at"])
    source_columns, source_defaults = _columns(GapSource, source_explicit)
    attempt_explicit = dict.fromkeys(
        ["organization_id", "patient_id", "step", "window", "channel", "status", "outcome",
         "automated", "actor_id", "planned_at", "not_before", "attempted_at", "outcome_at"]
    )  # fmt: skip
    if attempts_per_patient:
        from outreach.models import OutreachAttempt

        attempt_columns, attempt_defaults = _columns(OutreachAttempt, attempt_explicit)

    def write_attempts(ids) -> None:
        if not attempts_per_patient:
            return
        report.attempts += copy_with_history(
            OutreachAttempt,
            attempt_columns,
            _attempt_rows(
                ids, attempts_per_patient, organization.pk, actor.pk, year, attempt_defaults
            ),
            actor=actor,
            reason="seed_scale",
        )

    def write_gaps(ids: range | list[int]) -> None:
        gap_ids = iter(_next_ids(CareGap, len(ids) * gaps_per_patient))
        gap_meta: list[tuple] = []

        def gap_rows():
            for pid in ids:
                start = pid % len(measures)
                for k in range(gaps_per_patient):
                    measure = measures[(start + k) % len(measures)]
                    state = states[(pid * 7 + k * 13) % len(states)]
                    kind, name = sources[(pid * 3 + k) % len(sources)]
                    step = NEXT_STEP.get(state, "")
                    due = today + dt.timedelta(days=(pid + k) % 45 - 15) if step else None
                    report.by_state[state] = report.by_state.get(state, 0) + 1
                    gap_id = next(gap_ids)
                    gap_meta.append((gap_id, kind, name))
                    yield (
                        gap_id, organization.pk, pid, measure.cms, measure.pk, *period,
                        kind, state, started, step, due, period[1],
                        MEASURE_WEIGHTS.get(measure.cms, 1),
                        "done_elsewhere" if state == "not_a_gap" else "",
                        today + dt.timedelta(days=pid % 30) if state == "scheduled" else None,
                        today - dt.timedelta(days=pid % 20) if state == "completed" else None,
                        started if state == "closed" else None,
                        started, *gap_defaults,
                    )  # fmt: skip

        report.gaps += copy_with_history(
            CareGap, gap_columns, gap_rows(), actor=actor, reason="seed_scale"
        )
        report.sources += copy_with_history(
            GapSource,
            source_columns,
            (
                (gap_id, kind, name, period[1], started, *source_defaults)
                for gap_id, kind, name in gap_meta
            ),
            actor=actor,
            reason="seed_scale",
        )

    with transaction.atomic():
        template_ids = list(
            Patient.objects.filter(organization=organization).values_list("id", flat=True)
        )
        write_gaps(template_ids)
        write_attempts(template_ids)

    rng = random.Random(seed)
    total = patients - report.patients
    for offset in progress(range(0, total, BATCH)):
        size = min(BATCH, total - offset)
        picks = [rng.randrange(len(template.patients)) for _ in range(size)]
        with transaction.atomic():
            ids = _next_ids(Patient, size)
            copy_with_history(
                Patient,
                patient_columns,
                _patient_rows(template, ids, picks, organization.pk, started, patient_defaults),
                actor=actor,
                reason="seed_scale",
            )
            _copy(
                FhirPatientDetail,
                detail_columns,
                (
                    (pid, run_id, *template.patients[pick][2])
                    for pid, pick in zip(ids, picks, strict=True)
                ),
            )
            records, codings = _copy_records(
                template, ids, picks, organization.pk, run_id, record_columns
            )
            report.records += records
            report.codings += codings
            write_gaps(ids)
            write_attempts(ids)
            report.patients += size
    # Statistics now, not when autovacuum comes by (it may be off): without them the planner
    # sorts every open gap for a 50-row list page, and the gap page's history lookup takes a
    # parallel plan (25 ms instead of under 0.5 ms).
    from outreach.models import OutreachAttempt

    with connection.cursor() as cursor:
        for model in (
            Patient,
            FhirPatientDetail,
            ClinicalRecord,
            ClinicalCoding,
            CareGap,
            CareGap.history.model,
            GapSource,
            OutreachAttempt,
        ):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    report.seconds = (timezone.now() - started).total_seconds()
    return report


__all__ = ["ScaleReport", "seed_scale"]
