"""A batch of checked files written set-based: a few queries per batch, not per file.

The batch first decides everything in Python, in file order, exactly as importing the files one
after another would: patients are looked up once for the whole batch (by FHIR id, then MRN), a
file may reference a patient an earlier file of the batch created, and when two files carry the
same patient or record the later content wins. Counts are those of that sequential import. A
file whose reference resolves to nothing is rejected here, before anything is written.

Then it writes: new patients in multi-row inserts with one history row each (actor and reason,
through carehub.history), changed patients in one `UPDATE … FROM` with their history rows,
FhirPatientDetail rows replaced set-based, and clinical records and codings with COPY on
PostgreSQL (ids drawn from the sequence up front, so no id comes back row by row) or multi-row
inserts on SQLite. A patient changed by two files of one batch gets one history row, with the
final content. The caller holds the transaction.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.utils import timezone
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

from carehub.history import connection_for, insert_select_with_history, update_from_with_history
from patients.clinical import ClinicalCoding, ClinicalRecord, FhirPatientDetail
from patients.fhir.bundle import BundleImport, FilePlan, PatientRow, dangling
from patients.fhir.reading import EntryError
from patients.fhir.resources import RECORD_COLUMNS, MappedRecord
from patients.fhir.timing import TimingError
from patients.models import Patient

# A batch is flushed at whichever comes first; large enough that the per-batch queries vanish
# in the per-file cost, small enough to keep a batch's rows in memory (tens of MB).
BATCH_FILES = 500
BATCH_RESOURCES = 20_000


@dataclass
class RunCounts:
    bundles_ok: int = 0
    bundles_rejected: int = 0
    patients_created: int = 0
    patients_updated: int = 0
    records_created: int = 0
    records_updated: int = 0
    records_unchanged: int = 0
    resources_skipped: int = 0
    resources: int = 0  # every resource of the accepted files

    def add(self, other: RunCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class FileReport:
    path: str
    sha256: str = ""
    bytes: int = 0
    status: str = "ok"
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """One file's result in a batch: errors (rejected), or its counts and warnings."""

    plan: FilePlan
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: RunCounts = field(default_factory=RunCounts)
    records: list[tuple[_Patient, MappedRecord]] = field(default_factory=list)


class _Patient:
    """A patient as the batch sees it: the database row (pk set) or one the batch creates."""

    __slots__ = (
        "created",
        "detail",
        "detail_hash",
        "fhir_birth",
        "had_detail",
        "mrn",
        "pk",
        "source_id",
        "values",
    )

    def __init__(self, pk, source_id, mrn, values, *, created=False):
        self.pk: int | None = pk
        self.source_id: str = source_id
        self.mrn: str = mrn
        self.values: tuple = values  # PatientRow.registry_values
        # The birth date an onset age counts from: the FHIR one, else the registry's.
        self.fhir_birth: dt.date | None = values[2]
        self.detail: tuple | None = None  # PatientRow.detail_values to write
        self.detail_hash: str | None = None
        self.had_detail = False
        self.created = created


class _Record:
    __slots__ = ("dirty", "mapped", "patient", "record_id")

    def __init__(self, patient: _Patient, mapped: MappedRecord, record_id: int | None, dirty):
        self.patient, self.mapped, self.record_id, self.dirty = patient, mapped, record_id, dirty


class Batch:
    def __init__(self, organization, run, actor):
        self.organization = organization
        self.run = run
        self.actor = actor
        self.plans: list[FilePlan] = []
        self.resources = 0
        self.connection = connection_for(ClinicalRecord)
        self.postgres = self.connection.vendor == "postgresql"
        # SQLite takes 999 parameters a statement as Django assumes it; PostgreSQL 65,535.
        self.max_params = 60_000 if self.postgres else 999

    def add(self, plan: FilePlan) -> None:
        self.plans.append(plan)
        self.resources += plan.resources

    @property
    def full(self) -> bool:
        return len(self.plans) >= BATCH_FILES or self.resources >= BATCH_RESOURCES

    def clear(self) -> None:
        self.plans, self.resources = [], 0

    # -- decide (Python, in file order) --------------------------------------------------------

    def write(self) -> list[Outcome]:
        """Decide and write the batch; one Outcome per plan, in order. Raises on a database
        error (the caller's transaction then rolls the whole batch back)."""
        self._load_patients()
        outcomes = [self._apply(plan) for plan in self.plans]
        accepted = [outcome for outcome in outcomes if not outcome.errors]
        records = self._classify(accepted)
        reason = f"FHIR import run #{self.run.pk}"
        self._write_patients(reason)
        self._write_details()
        self._write_records(records)
        for outcome in accepted:
            outcome.counts.bundles_ok = 1
            outcome.counts.resources = outcome.plan.resources
            outcome.counts.resources_skipped = outcome.plan.skipped
        return outcomes

    def _load_patients(self) -> None:
        """Every database patient the batch may touch, by FHIR id and by MRN, in few queries."""
        source_ids = {row.source_id for plan in self.plans for row in plan.patients}
        source_ids.update(d.target_id for plan in self.plans for d in plan.deferred)
        mrns = {row.mrn for plan in self.plans for row in plan.patients}
        columns = ("id", "source_id", "mrn", "given_name", "family_name", "birth_date", "sex")
        found: dict[int, tuple] = {}
        for name, values in (("source_id", source_ids), ("mrn", mrns)):
            for match in self._matching(name, sorted(values)):
                for row in (
                    Patient.objects.filter(organization=self.organization, **match)
                    .order_by()
                    .values_list(*columns)
                ):
                    found[row[0]] = row
        self.by_source: dict[str, _Patient] = {}
        self.by_mrn: dict[str, _Patient] = {}
        states: dict[int, _Patient] = {}
        for pk in sorted(found):  # of two patients with one FHIR id, the later one (as before)
            _pk, source_id, mrn, *values = found[pk]
            state = states[pk] = _Patient(pk, source_id, mrn, tuple(values))
            if source_id:
                self.by_source[source_id] = state
            self.by_mrn[mrn] = state
        for match in self._matching("patient_id", sorted(states)):
            for patient_id, content_hash, birth_date in (
                FhirPatientDetail.objects.filter(**match)
                .order_by()
                .values_list("patient_id", "content_hash", "birth_date")
            ):
                state = states[patient_id]
                state.detail_hash, state.fhir_birth, state.had_detail = (
                    content_hash,
                    birth_date,
                    True,
                )
        self.created: list[_Patient] = []
        self.updated: dict[int, _Patient] = {}  # pk -> database patient whose columns change
        self.details: dict[int, _Patient] = {}  # id() -> patient whose FhirPatientDetail changes

    def _apply(self, plan: FilePlan) -> Outcome:
        """One file against the batch's view of the database, as if imported on its own."""
        outcome = Outcome(plan)
        found = self._resolve_deferred(plan, outcome)
        if outcome.errors:
            return outcome
        counts = outcome.counts
        states: dict[int, _Patient] = {}  # id(PatientRow) -> patient
        new_mrns: set[str] = set()
        registered: list[_Patient] = []
        for row in plan.patients:
            state = self.by_source.get(row.source_id)
            mrn = row.mrn
            if state is None:
                state = self.by_mrn.get(mrn)
                if state is not None and (state.source_id or not row.has_mrn):
                    # The MRN is taken by a patient who already has another FHIR id: not the
                    # same person (test decks share placeholder MRNs). Keep the FHIR id as
                    # this patient's MRN and say so.
                    outcome.warnings.append(
                        f"{row.label}.identifier: MRN {mrn!r} already belongs to FHIR patient "
                        f"{state.source_id!r}; imported with MRN = FHIR id"
                    )
                    mrn = row.source_id
                    state = None
            values = row.registry_values
            if state is None:
                if mrn in new_mrns:  # two new patients of one file share an MRN
                    mrn = row.source_id
                new_mrns.add(mrn)
                state = _Patient(None, row.source_id, mrn, values, created=True)
                self.created.append(state)
                registered.append(state)
                counts.patients_created += 1
            elif state.values != values or not state.source_id:
                state.values = values
                if not state.source_id:
                    state.source_id = row.source_id
                    registered.append(state)
                if not state.created:
                    self.updated[state.pk] = state
                counts.patients_updated += 1
            if state.detail_hash != row.content_hash:
                state.detail, state.detail_hash = row.detail_values, row.content_hash
                self.details[id(state)] = state
            state.fhir_birth = row.birth_date
            states[id(row)] = state
        for state in registered:  # later files of the batch find them as in the database
            self.by_source[state.source_id] = state
            self.by_mrn[state.mrn] = state
        outcome.records = [(states[id(row)], mapped) for row, mapped in plan.records]
        for state_or_row, mapped in found:
            state = (
                states[id(state_or_row)] if isinstance(state_or_row, PatientRow) else state_or_row
            )
            outcome.records.append((state, mapped))
        return outcome

    def _resolve_deferred(self, plan: FilePlan, outcome: Outcome) -> list:
        """Map the records whose patient is outside the file: a patient of an earlier file of
        the batch or of the database (by FHIR id), else the file's only patient, else the
        file is rejected naming the entry."""
        mapped = []
        mapper: BundleImport | None = plan.mapper
        for deferred in plan.deferred:
            entry = deferred.entry
            try:
                state = self.by_source.get(deferred.target_id)
                if state is not None:
                    birth = state.fhir_birth
                    target = state
                else:
                    target = dangling(
                        entry,
                        deferred.link,
                        deferred.reference,
                        plan.only_patient,
                        outcome.warnings,
                    )
                    birth = target.birth_date
                mapped.append((target, mapper._record(entry, deferred.resource_id, birth)))
            except (EntryError, TimingError) as error:
                outcome.errors.append(BundleImport.entry_error(entry, error))
        return mapped

    def _classify(self, accepted: list[Outcome]) -> list[_Record]:
        """Created, updated or unchanged, file after file; returns the records to write."""
        existing: dict[tuple, tuple[int, str]] = {}
        known = sorted(
            {state.pk for o in accepted for state, _ in o.records if state.pk is not None}
        )
        for match in self._matching("patient_id", known):
            for patient_id, kind, resource_id, pk, content_hash in (
                ClinicalRecord.objects.filter(**match)
                .order_by()
                .values_list("patient_id", "resource_type", "resource_id", "id", "content_hash")
            ):
                existing[(patient_id, kind, resource_id)] = (pk, content_hash)
        pending: dict[tuple, _Record] = {}
        for outcome in accepted:
            counts = outcome.counts
            seen = set()
            for state, mapped in outcome.records:
                key = (id(state), mapped.kind, mapped.resource_id)
                if key in seen:
                    continue  # the same resource twice in one file (e.g. nested copies)
                seen.add(key)
                record = pending.get(key)
                if record is None:
                    old = existing.get((state.pk, mapped.kind, mapped.resource_id))
                    if old is None:
                        counts.records_created += 1
                        pending[key] = _Record(state, mapped, None, True)
                    elif old[1] == mapped.content_hash:
                        counts.records_unchanged += 1
                        pending[key] = _Record(state, mapped, old[0], False)
                    else:
                        counts.records_updated += 1
                        pending[key] = _Record(state, mapped, old[0], True)
                elif record.mapped.content_hash == mapped.content_hash:
                    counts.records_unchanged += 1
                else:  # an earlier file of the batch wrote it: the later content wins
                    counts.records_updated += 1
                    record.mapped, record.dirty = mapped, True
            outcome.records = []
        return [record for record in pending.values() if record.dirty]

    # -- write ---------------------------------------------------------------------------------

    def _write_patients(self, reason: str) -> None:
        now = timezone.now()
        if self.created:
            given, other, defaults = _patient_columns(now)
            rows = [
                [self.organization.pk, state.mrn, state.source_id, *state.values]
                for state in self.created
            ]
            # The other columns take the same default in every row: constants of the SELECT,
            # not values repeated in every row of the JSON (two thirds of it).
            fields = {model_field.column: model_field for model_field in Patient._meta.fields}
            constants = ", ".join(
                f"%s::{fields[column].db_type(self.connection)}" if self.postgres else "%s"
                for column in other
            )
            for chunk in self._chunks(rows, len(given) + len(other)):
                select_sql, params = self._rows_sql(Patient, given, chunk)
                insert_select_with_history(
                    Patient,
                    [*given, *other],
                    f"SELECT v.*, {constants} FROM ({select_sql}) AS v",  # noqa: S608
                    [*self._adapt(defaults), *params],
                    actor=self.actor,
                    reason=reason,
                )
            by_mrn = {state.mrn: state for state in self.created}
            for match in self._matching("mrn", sorted(by_mrn)):
                for mrn, pk in Patient.objects.filter(
                    organization=self.organization, **match
                ).values_list("mrn", "id"):
                    by_mrn[mrn].pk = pk
        if self.updated:
            quote = self.connection.ops.quote_name
            table = quote(Patient._meta.db_table)
            names = ["id", "source_id", "given_name", "family_name", "birth_date", "sex"]
            rows = [[state.pk, state.source_id, *state.values] for state in self.updated.values()]
            for chunk in self._chunks(rows, len(names)):
                select_sql, params = self._rows_sql(Patient, names, chunk)
                update_from_with_history(
                    Patient,
                    assignments=", ".join(f"{quote(n)} = v.{quote(n)}" for n in names[1:])
                    + f", {quote('updated_at')} = %s",
                    from_sql=f"({select_sql}) AS v",
                    where=f"{table}.{quote('id')} = v.{quote('id')}",
                    params=[*self._adapt([now]), *params],
                    actor=self.actor,
                    reason=reason,
                )

    def _rows_sql(self, model, columns: list[str], rows: list[list]) -> tuple[str, list]:
        """A SELECT yielding `rows` as `columns` of `model`: PostgreSQL unnests one array per
        column (a handful of parameters, however many rows), SQLite reads a UNION ALL."""
        quote = self.connection.ops.quote_name
        if self.postgres:
            # One JSON parameter for all the rows: json.dumps is C, a list of parameters is not.
            fields = {f.column: f for f in model._meta.concrete_fields}
            types = ", ".join(f"{quote(c)} {fields[c].db_type(self.connection)}" for c in columns)
            text = json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=_iso)
            return f"SELECT * FROM json_to_recordset(%s::json) AS u({types})", [text]  # noqa: S608
        first = ", ".join(f"%s AS {quote(c)}" for c in columns)
        other = ", ".join(["%s"] * len(columns))
        sql = " UNION ALL ".join([f"SELECT {first}"] + [f"SELECT {other}"] * (len(rows) - 1))
        return sql, self._adapt([value for row in rows for value in row])

    def _write_details(self) -> None:
        """FhirPatientDetail (no history: its provenance is the run) of the patients whose
        FHIR content changed: the old rows go, the new ones are inserted in one go."""
        unique = self.details.values()
        if not unique:
            return
        table = FhirPatientDetail._meta.db_table
        replaced = [state.pk for state in unique if state.had_detail]
        self._delete(table, "patient_id", replaced)
        columns = ["patient_id", "import_run_id", "birth_date", "gender", "us_core_sex"]
        columns += ["deceased", "deceased_at", "content_hash"]
        rows = [(state.pk, self.run.pk, *state.detail, state.detail_hash) for state in unique]
        self._insert(FhirPatientDetail, columns, rows)

    def _write_records(self, records: list[_Record]) -> None:
        if not records:
            return
        changed = [record for record in records if record.record_id is not None]
        new = [record for record in records if record.record_id is None]
        record_table = ClinicalRecord._meta.db_table
        if changed:
            self._delete(ClinicalCoding._meta.db_table, "record_id", [r.record_id for r in changed])
            quote = self.connection.ops.quote_name
            assignments = ", ".join(
                f"{quote(c)} = %s" for c in ("import_run_id", "content_hash", *RECORD_COLUMNS)
            )
            sql = f"UPDATE {quote(record_table)} SET {assignments} WHERE id = %s"  # noqa: S608
            with self.connection.cursor() as cursor:
                cursor.executemany(
                    sql,
                    [
                        self._adapt(
                            [self.run.pk, r.mapped.content_hash, *r.mapped.values, r.record_id]
                        )
                        for r in changed
                    ],
                )
        columns = ["organization_id", "patient_id", "import_run_id", "resource_type"]
        columns += ["resource_id", "content_hash", *RECORD_COLUMNS]
        organization, run = self.organization.pk, self.run.pk
        if new:
            if self.postgres:
                ids = self._next_ids(record_table, len(new))
                for record, pk in zip(new, ids, strict=True):
                    record.record_id = pk
                self._copy(
                    ClinicalRecord,
                    ["id", *columns],
                    (
                        (
                            r.record_id,
                            organization,
                            r.patient.pk,
                            run,
                            r.mapped.kind,
                            r.mapped.resource_id,
                            r.mapped.content_hash,
                            *r.mapped.values,
                        )
                        for r in new
                    ),
                )
            else:
                by_key = {(r.patient.pk, r.mapped.kind, r.mapped.resource_id): r for r in new}
                for chunk in self._chunks(new, len(columns)):
                    params = []
                    for r in chunk:
                        params += [organization, r.patient.pk, run, r.mapped.kind]
                        params += [r.mapped.resource_id, r.mapped.content_hash, *r.mapped.values]
                    placeholders = f"({', '.join(['%s'] * len(columns))})"
                    with self.connection.cursor() as cursor:
                        cursor.execute(
                            f"INSERT INTO {record_table} ({', '.join(columns)}) VALUES "  # noqa: S608
                            f"{', '.join([placeholders] * len(chunk))} "
                            "RETURNING id, patient_id, resource_type, resource_id",
                            self._adapt(params),
                        )
                        for pk, *key in cursor.fetchall():
                            by_key[tuple(key)].record_id = pk
        self._insert(
            ClinicalCoding,
            ["record_id", "organization_id", "element", "system", "code"],
            (
                (record.record_id, organization, *coding)
                for record in records
                for coding in record.mapped.codings
            ),
        )

    # -- SQL helpers ---------------------------------------------------------------------------

    def _matching(self, field: str, values: list) -> Iterator[dict]:
        """Filters matching `field` against `values`: on PostgreSQL one `__any` filter, the
        values as one array constant however many (carehub.lookups: no join for the planner to
        misjudge on tables without statistics); SQLite takes `__in` slices under its parameter
        limit."""
        if not values:
            return
        if self.postgres:
            yield {f"{field}__any": values}
            return
        for chunk in self._chunks(values, 1):
            yield {f"{field}__in": chunk}

    def _chunks(self, items: Sequence, width: int) -> Iterator[Sequence]:
        """Slices of `items` whose `width` parameters each fit in one statement."""
        size = max(1, min(self.max_params // width, 5000))
        for start in range(0, len(items), size):
            yield items[start : start + size]

    def _adapt(self, params: list) -> list:
        """Values as the database takes them outside the ORM: SQLite stores instants as
        Django's naive-UTC text (sqlite3 would write an offset Django's lookups miss)."""
        if self.postgres:
            return params
        ops = self.connection.ops
        return [
            ops.adapt_datetimefield_value(value)
            if isinstance(value, dt.datetime)
            else value.isoformat()
            if isinstance(value, dt.date)
            else value
            for value in params
        ]

    def _delete(self, table: str, column: str, values: list) -> None:
        with self.connection.cursor() as cursor:
            for chunk in self._chunks(values, 1):
                cursor.execute(
                    f"DELETE FROM {table} WHERE {column} IN ({', '.join(['%s'] * len(chunk))})",  # noqa: S608
                    list(chunk),
                )

    def _insert(self, model, columns: list[str], rows: Iterable[Sequence]) -> None:
        """Rows into a table without history: COPY on PostgreSQL, executemany on SQLite."""
        if self.postgres:
            self._copy(model, columns, rows)
            return
        rows = [self._adapt(list(row)) for row in rows]
        if rows:
            with self.connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
                    f"VALUES ({', '.join(['%s'] * len(columns))})",
                    rows,
                )

    def _copy(self, model, columns: list[str], rows: Iterable[Sequence]) -> None:
        """Binary COPY: psycopg's C dumpers write dates, instants and numbers as they are
        (its text dumpers spell a date or instant in about 0.7 us, three times the rest of a
        record's row) and the server reads them without parsing. JSON columns come as text."""
        fields = {model_field.column: model_field for model_field in model._meta.concrete_fields}
        # The names psycopg knows the types by: "varchar(32)" -> "varchar".
        types = [fields[column].db_type(self.connection).split("(")[0] for column in columns]
        sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with self.connection.cursor() as cursor:
            cursor.adapters.register_dumper(None, _JsonTextDumper)  # this cursor only
            with cursor.copy(sql) as copy:
                copy.set_types(types)
                write_row = copy.write_row
                for row in rows:
                    write_row(row)

    def _next_ids(self, table: str, count: int) -> list[int]:
        """`count` ids from the table's own sequence, so rows can be copied with their ids."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]


class _JsonTextDumper(Dumper):
    """A jsonb column in binary COPY from JSON text (the batch's rows carry JSON columns as
    text already): the format's version byte, then the text. One call, where psycopg's own
    jsonb dumper would encode the text again as a JSON string."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _iso(value):
    """JSON for dates and instants (json_to_recordset reads ISO 8601)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _patient_columns(now: dt.datetime) -> tuple[list[str], list[str], list]:
    """The insert columns of a new patient: the ones the import sets, then every other
    column with its model default (so a field added later does not break the import)."""
    given = ["organization_id", "mrn", "source_id", "given_name", "family_name", "birth_date"]
    given.append("sex")
    other, defaults = [], []
    for model_field in Patient._meta.concrete_fields:
        if model_field.primary_key or model_field.attname in given:
            continue
        other.append(model_field.column)
        if getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False):
            defaults.append(now)
        else:
            value = model_field.get_default()
            defaults.append(value.value if isinstance(value, enum.Enum) else value)
    return given, other, defaults
