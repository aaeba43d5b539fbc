"""One bundle's import: resolve references, match patients, map and write records."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from carehub.history import (
    bulk_create_untracked,
    bulk_create_with_history,
    bulk_update_untracked,
    bulk_update_with_history,
)
from patients.clinical import ClinicalCoding, ClinicalRecord, FhirPatientDetail
from patients.fhir.reading import read_list, read_object, read_string
from patients.fhir.resources import (
    MAX_ID_LENGTH,
    PATIENT_LINK,
    US_CORE_SEX,
    Entry,
    EntryError,
    ResourceMapper,
    _has_code,
    _hash,
)
from patients.fhir.timing import TimingError, parse_datetime
from patients.models import Patient

if TYPE_CHECKING:  # the importer imports this module
    from patients.fhir.importer import FileReport, RunCounts

# A FHIR Patient without birthDate: `Patient.birth_date` is required by the registry, so it
# holds this placeholder while FhirPatientDetail.birth_date stays empty (age unknown).
UNKNOWN_BIRTH_DATE = dt.date(1900, 1, 1)


class BundleRejected(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


class BundleImport(ResourceMapper):
    def __init__(self, organization, run, actor, entries, counts, report):
        self.organization = organization
        self.import_run = run
        self.actor = actor
        self.entries: list[Entry] = entries
        self.counts: RunCounts = counts
        self.report: FileReport = report
        self.errors: list[str] = []
        self.known_patients: dict[str, Patient | None] = {}  # database lookups by FHIR id
        self.by_url: dict[str, Entry] = {}
        self.by_type_id: dict[tuple[str, str], Entry] = {}
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

    def run(self) -> None:
        patient_entries = [e for e in self.entries if e.resource["resourceType"] == "Patient"]
        self.patients: dict[int, Patient] = {}  # id(Entry.resource) -> Patient
        self.birth_dates: dict[int, dt.date | None] = {}
        self._import_patients(patient_entries)
        if self.errors:
            raise BundleRejected(self.errors)
        rows = []
        for entry in self.entries:
            kind = entry.resource["resourceType"]
            if kind not in PATIENT_LINK:
                if kind != "Patient":
                    self.counts.resources_skipped += 1
                continue
            try:
                rows.append(self._record(entry, patient_entries))
            except EntryError as error:
                self.errors.append(f"{entry.label} ({kind}/{entry.resource.get('id')}): {error}")
            except TimingError as error:
                self.errors.append(f"{entry.label} ({kind}/{entry.resource.get('id')}): {error}")
        if self.errors:
            raise BundleRejected(self.errors)
        self._write(rows)

    # -- patients --
    def _import_patients(self, entries: list[Entry]) -> None:
        parsed = []
        first_with_id: dict[str, dict] = {}
        copies: list[tuple[Entry, dict]] = []  # identical copies of a patient (nested bundles)
        for entry in entries:
            label = f"{entry.label} (Patient/{entry.resource.get('id')})"
            try:
                row = self._parse_patient(entry)
            except (EntryError, TimingError) as error:
                self.errors.append(f"{label}.{error}")
                continue
            first = first_with_id.get(row["source_id"])
            if first is None:
                first_with_id[row["source_id"]] = row
                parsed.append(row)
            elif first["hash"] == row["hash"]:
                copies.append((entry, first))
            else:
                self.errors.append(
                    f"{label}.id: {row['source_id']!r} is also the id of {first['entry'].label}, "
                    "with different content"
                )
        if not parsed:
            return
        existing = {
            p.source_id: p
            for p in Patient.objects.filter(
                organization=self.organization, source_id__in=[row["source_id"] for row in parsed]
            ).order_by()
        }
        by_mrn = {
            p.mrn: p
            for p in Patient.objects.filter(
                organization=self.organization,
                mrn__in=[row["mrn"] for row in parsed if row["source_id"] not in existing],
            ).order_by()
        }
        reason = f"FHIR import run #{self.import_run.pk}"
        to_create, to_update = [], []
        new_mrns: set[str] = set()
        for row in parsed:
            patient = existing.get(row["source_id"])
            if patient is None:
                patient = by_mrn.get(row["mrn"])
                if patient is not None and (patient.source_id or not row["has_mrn"]):
                    # The MRN is taken by a patient who already has another FHIR id: not the
                    # same person (test decks share placeholder MRNs). Keep the FHIR id as
                    # this patient's MRN and say so.
                    self.report.warnings.append(
                        f"{row['entry'].label}.identifier: MRN {row['mrn']!r} already belongs to "
                        f"FHIR patient {patient.source_id!r}; imported with MRN = FHIR id"
                    )
                    row["mrn"] = row["source_id"]
                    patient = None
            values = {
                "given_name": row["given_name"],
                "family_name": row["family_name"],
                "birth_date": row["birth_date"] or UNKNOWN_BIRTH_DATE,
                "sex": row["sex"],
            }
            if patient is None:
                if row["mrn"] in new_mrns:  # two new patients of one bundle share an MRN
                    row["mrn"] = row["source_id"]
                new_mrns.add(row["mrn"])
                patient = Patient(
                    organization=self.organization,
                    source_id=row["source_id"],
                    mrn=row["mrn"],
                    **values,
                )
                to_create.append(patient)
            else:
                changed = {k: v for k, v in values.items() if getattr(patient, k) != v}
                if not patient.source_id:
                    changed["source_id"] = row["source_id"]
                if changed:
                    for key, value in changed.items():
                        setattr(patient, key, value)
                    to_update.append(patient)
            self.patients[id(row["entry"].resource)] = patient
            self.birth_dates[id(row["entry"].resource)] = row["birth_date"]
        if self.errors:
            return
        if to_create:
            bulk_create_with_history(to_create, actor=self.actor, reason=reason)
            if any(p.pk is None for p in to_create):
                # Only databases that cannot return ids from a bulk insert need the refetch.
                created = {
                    p.source_id: p
                    for p in Patient.objects.filter(
                        organization=self.organization,
                        source_id__in=[p.source_id for p in to_create],
                    ).order_by()
                }
                for key, patient in list(self.patients.items()):
                    if patient.pk is None:
                        self.patients[key] = created[patient.source_id]
        if to_update:
            bulk_update_with_history(
                to_update,
                ["given_name", "family_name", "birth_date", "sex", "source_id"],
                actor=self.actor,
                reason=reason,
            )
        for entry, first in copies:
            self.patients[id(entry.resource)] = self.patients[id(first["entry"].resource)]
            self.birth_dates[id(entry.resource)] = first["birth_date"]
        self.counts.patients_created += len(to_create)
        self.counts.patients_updated += len(to_update)
        self._write_details(parsed)

    @staticmethod
    def _parse_patient(entry: Entry) -> dict:
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
            if _has_code(
                identifier.get("type"), "http://terminology.hl7.org/CodeSystem/v2-0203", {"MR"}
            ):
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
        return {
            "entry": entry,
            "source_id": source_id,
            "mrn": mrn or source_id,
            "has_mrn": bool(mrn),
            "given_name": " ".join(given)[:100],
            "family_name": family[:100],
            "birth_date": birth,
            "sex": gender if gender in Patient.Sex.values else Patient.Sex.UNKNOWN,
            "gender": gender[:16],
            "us_core_sex": sex_code[:32],
            "deceased": bool(resource.get("deceasedBoolean")) or deceased_at is not None,
            "deceased_at": deceased_at,
            "hash": _hash(resource),
        }

    def _write_details(self, parsed: list[dict]) -> None:
        patients = {row["source_id"]: self.patients[id(row["entry"].resource)] for row in parsed}
        existing = {
            d.patient_id: d
            for d in FhirPatientDetail.objects.filter(
                patient_id__in=[p.pk for p in patients.values()]
            ).order_by()
        }
        for row in parsed:
            patient = patients[row["source_id"]]
            detail = existing.get(patient.pk)
            if detail is not None and detail.content_hash == row["hash"]:
                continue
            detail = detail or FhirPatientDetail(patient=patient)
            detail.import_run = self.import_run
            detail.birth_date = row["birth_date"]
            detail.gender = row["gender"]
            detail.us_core_sex = row["us_core_sex"]
            detail.deceased = row["deceased"]
            detail.deceased_at = row["deceased_at"]
            detail.content_hash = row["hash"]
            detail.save()

    def _patient_for(self, entry: Entry, patient_entries: list[Entry]) -> tuple[Patient, int]:
        kind = entry.resource["resourceType"]
        link = PATIENT_LINK[kind]
        reference = entry.resource.get(link)
        if not isinstance(reference, dict) or not reference.get("reference"):
            raise EntryError(f"{link}: missing reference to the patient")
        read_string(reference["reference"], f"{link}.reference")
        target = self.resolve(reference)
        if target is not None:
            if target.resource["resourceType"] != "Patient":
                raise EntryError(
                    f"{link}: {reference['reference']!r} is a "
                    f"{target.resource['resourceType']}, not a Patient"
                )
            key = id(target.resource)
            return self.patients[key], key
        tail = reference["reference"].rstrip("/").split("/")
        if len(tail) >= 2 and tail[-2] == "Patient":
            if tail[-1] not in self.known_patients:
                self.known_patients[tail[-1]] = (
                    Patient.objects.filter(organization=self.organization, source_id=tail[-1])
                    .order_by()
                    .first()
                )
            patient = self.known_patients[tail[-1]]
            if patient is not None:
                return patient, -patient.pk
        if len(patient_entries) == 1:
            # An authoring leftover pointing at a patient that is not in the bundle (MADiE
            # copies): the bundle is one patient's record, so the resource is theirs.
            self.report.warnings.append(
                f"{entry.label}.{link}: {reference['reference']!r} resolves to nothing; "
                "attached to the bundle's only Patient"
            )
            key = id(patient_entries[0].resource)
            return self.patients[key], key
        raise EntryError(f"{link}: reference {reference['reference']!r} resolves to nothing")

    def _birth_date(self, key: int, patient: Patient) -> dt.date | None:
        if key not in self.birth_dates:  # a patient imported earlier: look it up once
            detail = FhirPatientDetail.objects.filter(patient=patient).order_by().first()
            self.birth_dates[key] = detail.birth_date if detail else patient.birth_date
        return self.birth_dates[key]

    # -- one clinical resource --
    def _write(self, rows: list[tuple[ClinicalRecord, list]]) -> None:
        if not rows:
            return
        patient_ids = {record.patient_id for record, _ in rows}
        existing = {
            (r.patient_id, r.resource_type, r.resource_id): r
            for r in ClinicalRecord.objects.filter(patient_id__in=patient_ids)
            .order_by()
            .only("id", "patient_id", "resource_type", "resource_id", "content_hash")
        }
        new, changed, codings_for = [], [], []
        seen = set()
        for record, codings in rows:
            key = (record.patient_id, record.resource_type, record.resource_id)
            if key in seen:
                continue  # the same resource twice in one bundle (e.g. nested copies)
            seen.add(key)
            old = existing.get(key)
            if old is not None and old.content_hash == record.content_hash:
                self.counts.records_unchanged += 1
                continue
            if old is not None:
                record.pk = old.pk
                changed.append(record)
            else:
                new.append(record)
            codings_for.append((record, codings))
        # Batch writes of history-free rows (see patients/clinical.py for why they have none).
        if changed:
            ClinicalCoding.objects.filter(record_id__in=[r.pk for r in changed]).delete()
            fields = [
                f.name
                for f in ClinicalRecord._meta.concrete_fields
                if f.name not in {"id", "organization", "patient", "resource_type", "resource_id"}
            ]
            bulk_update_untracked(changed, fields)
        bulk_create_untracked(new)
        bulk_create_untracked(
            [
                ClinicalCoding(
                    record_id=record.pk,
                    organization_id=self.organization.pk,
                    element=element,
                    system=system[:200],
                    code=code[:64],
                )
                for record, codings in codings_for
                for element, system, code in codings
            ]
        )
        self.counts.records_created += len(new)
        self.counts.records_updated += len(changed)
