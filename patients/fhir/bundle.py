"""One file's part of an import, in Python only: check every entry, map patients and records.

Nothing here touches the database. References are resolved inside the file; a reference to a
patient the file does not hold (`Patient/<id>`) is left for the batch (patients/fhir/batch.py),
which resolves it against earlier files of the batch and the database, in file order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from patients.fhir.reading import read_list, read_object, read_string
from patients.fhir.resources import (
    MAX_ID_LENGTH,
    PATIENT_LINK,
    US_CORE_SEX,
    Entry,
    EntryError,
    MappedRecord,
    ResourceMapper,
    _digest,
    _has_code,
)
from patients.fhir.timing import TimingError, parse_datetime
from patients.models import Patient

if TYPE_CHECKING:  # the importer imports this module
    from patients.fhir.importer import FileReport

# A FHIR Patient without birthDate: `Patient.birth_date` is required by the registry, so it
# holds this placeholder while FhirPatientDetail.birth_date stays empty (age unknown).
UNKNOWN_BIRTH_DATE = dt.date(1900, 1, 1)
MRN_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
_SEXES = frozenset(Patient.Sex.values)


class BundleRejected(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(slots=True)
class PatientRow:
    """One FHIR Patient, mapped: the registry columns and the FhirPatientDetail columns."""

    label: str  # the entry, e.g. "entry[0]"
    source_id: str
    mrn: str  # the MR identifier, else the FHIR id
    has_mrn: bool
    given_name: str
    family_name: str
    birth_date: dt.date | None  # as written (None: unknown age)
    sex: str
    gender: str
    us_core_sex: str
    deceased: bool
    deceased_at: dt.datetime | None
    content_hash: str = ""

    @property
    def registry_values(self) -> tuple:
        """(given_name, family_name, birth_date, sex) as `Patient` holds them."""
        return (
            self.given_name,
            self.family_name,
            self.birth_date or UNKNOWN_BIRTH_DATE,
            self.sex,
        )

    @property
    def detail_values(self) -> tuple:
        """FhirPatientDetail's (birth_date, gender, us_core_sex, deceased, deceased_at)."""
        return (self.birth_date, self.gender, self.us_core_sex, self.deceased, self.deceased_at)


@dataclass(slots=True)
class Deferred:
    """A record whose patient is not in its file: resolved by the batch, then mapped."""

    entry: Entry
    resource_id: str
    link: str  # "subject", "patient" or "beneficiary"
    reference: str
    target_id: str  # the FHIR id of `Patient/<id>`


@dataclass(slots=True)
class FilePlan:
    """What one accepted file would write; the batch decides against the database."""

    name: str
    report: FileReport
    patients: list[PatientRow] = field(default_factory=list)  # one per FHIR id, file order
    records: list[tuple[PatientRow, MappedRecord]] = field(default_factory=list)
    deferred: list[Deferred] = field(default_factory=list)
    # The file's Patient when it has exactly one: where a dangling reference is attached.
    only_patient: PatientRow | None = None
    mapper: BundleImport | None = None  # kept only to map `deferred` entries later
    resources: int = 0
    skipped: int = 0


class BundleImport(ResourceMapper):
    """Check and map one file's entries (the importer's Python phase)."""

    def __init__(self, name: str, entries: list[Entry], report: FileReport):
        self.entries: list[Entry] = entries
        self.report: FileReport = report
        self.plan = FilePlan(name=name, report=report, resources=len(entries))
        self.errors: list[str] = []
        self.by_url: dict[str, Entry] = {}
        self.by_type_id: dict[tuple[str, str], Entry] = {}
        self.patient_by_reference: dict[str, PatientRow] = {}
        for entry in entries:
            if entry.full_url:
                self.by_url[entry.full_url] = entry
                tail = entry.full_url.rstrip("/").split("/")
                if len(tail) >= 2:
                    self.by_type_id.setdefault((tail[-2], tail[-1]), entry)
        for entry in entries:
            rid = entry.resource.get("id")
            if rid:
                self.by_type_id[(entry.resource["resourceType"], str(rid))] = entry

    # -- references --
    def resolve(self, reference) -> Entry | None:
        if not isinstance(reference, dict):
            return None
        ref = reference.get("reference")
        if not isinstance(ref, str) or not ref or ref.startswith("#"):
            return None
        if ref in self.by_url:
            return self.by_url[ref]
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2:
            return self.by_type_id.get((parts[-2], parts[-1]))
        return None

    def run(self) -> FilePlan:
        """The file's plan; raises BundleRejected naming entry and field of every problem."""
        patient_entries = [e for e in self.entries if e.resource["resourceType"] == "Patient"]
        # id(resource) -> row, identical copies of a Patient (nested bundles) included
        self.patients: dict[int, PatientRow] = {}
        self._parse_patients(patient_entries)
        if self.errors:
            raise BundleRejected(self.errors)
        plan = self.plan
        if len(patient_entries) == 1:
            plan.only_patient = self.patients[id(patient_entries[0].resource)]
        for entry in self.entries:
            kind = entry.resource["resourceType"]
            if kind not in PATIENT_LINK:
                if kind != "Patient":
                    plan.skipped += 1
                continue
            try:
                resource_id = entry.resource.get("id")
                if type(resource_id) is not str or not 0 < len(resource_id) <= MAX_ID_LENGTH:
                    resource_id = self._resource_id(entry.resource)  # or the error naming it
                patient = self._patient_for(entry, resource_id)
                if patient is not None:
                    plan.records.append(
                        (patient, self._record(entry, resource_id, patient.birth_date))
                    )
            except (EntryError, TimingError) as error:
                self.errors.append(self.entry_error(entry, error))
        if self.errors:
            raise BundleRejected(self.errors)
        if plan.deferred:
            plan.mapper = self
        return plan

    @staticmethod
    def entry_error(entry: Entry, error: Exception) -> str:
        return (
            f"{entry.label} ({entry.resource['resourceType']}/{entry.resource.get('id')}): {error}"
        )

    # -- patients --
    def _parse_patients(self, entries: list[Entry]) -> None:
        first_with_id: dict[str, PatientRow] = {}
        for entry in entries:
            label = f"{entry.label} (Patient/{entry.resource.get('id')})"
            try:
                row = self._parse_patient(entry)
            except (EntryError, TimingError) as error:
                self.errors.append(f"{label}.{error}")
                continue
            first = first_with_id.get(row.source_id)
            if first is None:
                first_with_id[row.source_id] = row
                self.plan.patients.append(row)
                self.patients[id(entry.resource)] = row
            elif first.content_hash == row.content_hash:
                self.patients[id(entry.resource)] = first  # an identical copy: the same patient
            else:
                self.errors.append(
                    f"{label}.id: {row.source_id!r} is also the id of {first.label}, "
                    "with different content"
                )

    @staticmethod
    def _parse_patient(entry: Entry) -> PatientRow:
        """One Patient's columns; EntryError/TimingError name the bad field."""
        resource = entry.resource
        source_id = read_string(resource.get("id"), "id", max_length=MAX_ID_LENGTH)
        if not source_id:
            raise EntryError("id: a Patient needs its FHIR id")
        birth = None
        if resource.get("birthDate"):
            try:
                birth = parse_datetime(resource["birthDate"]).local_date
            except TimingError as error:
                raise EntryError(f"birthDate: {error}") from None
        mrn = ""
        for index, identifier in enumerate(read_list(resource.get("identifier"), "identifier")):
            where = f"identifier[{index}]"
            identifier = read_object(identifier, where)
            if _has_code(identifier.get("type"), MRN_TYPE, {"MR"}):
                mrn = read_string(identifier.get("value"), f"{where}.value", max_length=64)
                if mrn:
                    break
        names = read_list(resource.get("name"), "name")
        name = read_object(names[0] if names else None, "name[0]")
        given = [
            read_string(part, f"name[0].given[{index}]")
            for index, part in enumerate(read_list(name.get("given"), "name[0].given"))
        ]
        family = read_string(name.get("family"), "name[0].family")
        sex_code = ""
        for extension in read_list(resource.get("extension"), "extension"):
            if isinstance(extension, dict) and extension.get("url") == US_CORE_SEX:
                sex_code = str(
                    extension.get("valueCode")
                    or (extension.get("valueCoding") or {}).get("code")
                    or ""
                )
        deceased_at = None
        if resource.get("deceasedDateTime"):
            try:
                deceased_at = parse_datetime(resource["deceasedDateTime"]).at
            except TimingError as error:
                raise EntryError(f"deceasedDateTime: {error}") from None
        gender = read_string(resource.get("gender"), "gender")
        row = PatientRow(
            label=entry.label,
            source_id=source_id,
            mrn=mrn or source_id,
            has_mrn=bool(mrn),
            given_name=" ".join(given)[:100],
            family_name=family[:100],
            birth_date=birth,
            sex=gender if gender in _SEXES else Patient.Sex.UNKNOWN.value,
            gender=gender[:16],
            us_core_sex=sex_code[:32],
            deceased=bool(resource.get("deceasedBoolean")) or deceased_at is not None,
            deceased_at=deceased_at,
        )
        # Re-import compares this digest of what is stored (the FhirPatientDetail and the
        # registry columns), so the same content writes nothing.
        row.content_hash = _digest(row.mrn, row.registry_values, row.detail_values)
        return row

    # -- the patient of a record --
    def _patient_for(self, entry: Entry, resource_id: str) -> PatientRow | None:
        """The file's patient the entry belongs to, or None when the batch must find it
        (the entry is then in `plan.deferred`)."""
        kind = entry.resource["resourceType"]
        link = PATIENT_LINK[kind]
        reference = entry.resource.get(link)
        if not isinstance(reference, dict) or not reference.get("reference"):
            raise EntryError(f"{link}: missing reference to the patient")
        ref = reference["reference"]
        # A file's records point at its few patients over and over: each reference is
        # resolved once (what it resolves to depends on the text alone).
        found = self.patient_by_reference.get(ref) if type(ref) is str else None
        if found is not None:
            return found
        ref = read_string(ref, f"{link}.reference")
        target = self.resolve(reference)
        if target is not None:
            if target.resource["resourceType"] != "Patient":
                raise EntryError(
                    f"{link}: {ref!r} is a {target.resource['resourceType']}, not a Patient"
                )
            found = self.patient_by_reference[ref] = self.patients[id(target.resource)]
            return found
        tail = ref.rstrip("/").split("/")
        if len(tail) >= 2 and tail[-2] == "Patient":
            self.plan.deferred.append(Deferred(entry, resource_id, link, ref, tail[-1]))
            return None
        return dangling(entry, link, ref, self.plan.only_patient, self.report.warnings)


def dangling(entry: Entry, link: str, ref: str, only, warnings: list[str]):
    """A reference that resolves to nothing, in the file or the database: the file's only
    patient (`only`, with a warning) or an EntryError."""
    if only is None:
        raise EntryError(f"{link}: reference {ref!r} resolves to nothing")
    # An authoring leftover pointing at a patient that is not in the bundle (MADiE copies):
    # the bundle is one patient's record, so the resource is theirs.
    warnings.append(
        f"{entry.label}.{link}: {ref!r} resolves to nothing; attached to the bundle's only Patient"
    )
    return only
