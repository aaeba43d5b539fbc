"""FHIR resource -> ClinicalRecord columns and codings (what the measures read).

Per type: which element carries the code, the timing (period, onset/abatement, effective,
performed, occurrence, authoredOn, the derived medication supply period), status, intent,
do-not-perform, value and components. Bad dates raise EntryError naming the field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple

from patients.clinical import ClinicalCoding, ClinicalRecord
from patients.fhir.reading import EntryError, read_list, read_object, read_string
from patients.fhir.timing import (
    NO_TIMING,
    Interval,
    TimingError,
    _day_point,
    choice_interval,
    interval,
    parse_datetime,
    period_interval,
    point_interval,
)

QICORE_DNP = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-doNotPerform"
US_CORE_SEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-sex"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
# The same code system under several URIs; matching is on one canonical URI (measures.md 1.3).
SYSTEM_ALIASES = {
    "http://www.nlm.nih.gov/research/umls/hcpcs": HCPCS,
    "https://www.nlm.nih.gov/research/umls/hcpcs": HCPCS,
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
}

# Which resource types become ClinicalRecords and which element links them to the patient.
PATIENT_LINK = {
    "Encounter": "subject",
    "Condition": "subject",
    "Procedure": "subject",
    "Observation": "subject",
    "Immunization": "patient",
    "DiagnosticReport": "subject",
    "MedicationRequest": "subject",
    "MedicationDispense": "subject",
    "DeviceRequest": "subject",
    "ServiceRequest": "subject",
    "Coverage": "beneficiary",
}


# Coded elements as plain strings (rows skip the model fields that would convert enum members).
_BODY_SITE = ClinicalCoding.Element.BODY_SITE.value
_CATEGORY = ClinicalCoding.Element.CATEGORY.value
_CODE = ClinicalCoding.Element.CODE.value
_DISCHARGE = ClinicalCoding.Element.DISCHARGE.value
_MEDICATION_REF = ClinicalCoding.Element.MEDICATION_REF.value
_VALUE = ClinicalCoding.Element.VALUE.value

# FHIR ids are at most 64 characters; a longer one is refused rather than cut, since two ids
# cut to the same 64 characters would silently become one record.
MAX_ID_LENGTH = 64


def canonical_system(system: str) -> str:
    return SYSTEM_ALIASES.get(system, system)


@dataclass(slots=True)
class Entry:
    label: str  # e.g. "entry[3]" or "entry[0].resource.entry[2]"
    full_url: str
    resource: dict


def _codings(concept) -> list[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept or a list of them; system-less codings kept."""
    if isinstance(concept, list):
        pairs = []
        for item in concept:
            pairs.extend(_codings(item))
        return pairs
    if not isinstance(concept, dict):
        return []
    pairs = []
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and (code := coding.get("code")):
            system = coding.get("system") or ""
            if type(system) is not str:
                system = str(system)
            pairs.append(
                (SYSTEM_ALIASES.get(system, system), code if type(code) is str else str(code))
            )
    return pairs


def _has_code(concept, system: str, codes: set[str]) -> bool:
    return any(s == system and c in codes for s, c in _codings(concept))


# The mapped columns of a ClinicalRecord, in the order a mapped row carries them (the key,
# patient, organization and run are added when the batch is written).
RECORD_COLUMNS = (
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
_KEY_COLUMNS = {"id", "organization", "patient", "import_run", "resource_type", "resource_id"}
# A column added to ClinicalRecord must be mapped here (or given a default) before it imports.
assert {f.name for f in ClinicalRecord._meta.concrete_fields} == {
    *_KEY_COLUMNS,
    "content_hash",
    *RECORD_COLUMNS,
}, "patients/fhir/resources.py RECORD_COLUMNS is out of step with ClinicalRecord"


class _Columns:
    """One record's mapped columns while it is mapped: plain attributes (no model object),
    class attributes as the defaults. The timing columns come from an Interval."""

    status = intent = encounter_class = encounter_ref = ""
    do_not_perform = clinical_active = period_unknown = False
    verified = True
    value_num = None
    value_type = value_unit = value_comparator = ""
    components = "[]"  # JSON text, as written to the database


# RECORD_COLUMNS are the columns before the timing, Interval.columns, the columns after it.
_TIMING = slice(RECORD_COLUMNS.index("has_timing"), RECORD_COLUMNS.index("end_open") + 1)
assert RECORD_COLUMNS[_TIMING] == (
    "has_timing",
    "start_at",
    "start_date",
    "start_precision",
    "end_at",
    "end_date",
    "end_precision",
    "end_open",
)
_columns_before = attrgetter(*RECORD_COLUMNS[: _TIMING.start])
_columns_after = attrgetter(*RECORD_COLUMNS[_TIMING.stop :])


class MappedRecord(NamedTuple):
    kind: str
    resource_id: str
    values: tuple  # RECORD_COLUMNS
    codings: tuple  # (element, system, code)
    # What re-import compares: a digest of exactly what would be stored, so the same content
    # changes nothing and a changed mapping (a fix in this module) is written again.
    content_hash: str


def _digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _record_digest(
    kind: str, resource_id: str, before: tuple, timing: Interval, after: tuple, codings: tuple
) -> str:
    """`_digest(kind, resource_id, values, codings)` where values = before + timing.columns +
    after, spelled from its parts: the same text, so stored hashes stay valid, without
    spelling the instants and dates of every record again (that was a third of the mapping)."""
    values = f"({_spell(before)[1:-1]}, {timing.spelled}, {repr(after)[1:-1]})"
    text = f"({kind!r}, {resource_id!r}, {values}, {_spell(codings)})"
    return hashlib.sha256(text.encode()).hexdigest()


# The columns before the timing (status, intent, flags) and the codings repeat from record to
# record: their spelling is cached. Only for tuples whose equal values spell the same (strings
# and booleans at fixed places); `after` holds a float, and -0.0 == 0.0 spell differently.
_spell = lru_cache(maxsize=1 << 14)(repr)


def _add(codings: list, element: str, concept) -> None:
    """Append the (element, system, code) rows of a CodeableConcept or a list of them (as
    `_codings` reads them) to `codings`."""
    if not concept:  # mostly absent
        return
    if isinstance(concept, list):
        for item in concept:
            _add(codings, element, item)
        return
    if not isinstance(concept, dict):
        return
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and (code := coding.get("code")):
            system = coding.get("system") or ""
            if type(system) is not str:
                system = str(system)
            codings.append(
                (
                    element,
                    SYSTEM_ALIASES.get(system, system)[:200],
                    (code if type(code) is str else str(code))[:64],
                )
            )


class ResourceMapper:
    """Mixin of BundleImport: maps one entry to a record row and its codings."""

    def _record(self, entry: Entry, resource_id: str, birth: dt.date | None) -> MappedRecord:
        """The entry's row; `birth` is its patient's FHIR birth date (for onset ages)."""
        resource = entry.resource
        kind = resource["resourceType"]
        record = _Columns()
        status, intent = resource.get("status"), resource.get("intent")
        if status:
            record.status = str(status)[:32]
        if intent:
            record.intent = str(intent)[:32]
        codings: list[tuple[str, str, str]] = []
        for extension in resource.get("modifierExtension") or []:
            if (
                isinstance(extension, dict)
                and extension.get("url") == QICORE_DNP
                and extension.get("valueBoolean") is True
            ):
                record.do_not_perform = True
        if resource.get("doNotPerform") is True:
            record.do_not_perform = True
        _add(codings, _CATEGORY, resource.get("category"))
        _add(codings, _BODY_SITE, resource.get("bodySite"))
        try:
            interval = _MAP_BY_TYPE[kind](self, record, resource, birth, codings)
        except (TypeError, AttributeError, KeyError, IndexError) as error:
            # An element of a shape the typed readers do not check yet: named by the error.
            raise EntryError(f"malformed element ({type(error).__name__}: {error})") from None
        before, after = _columns_before(record), _columns_after(record)
        codings_row = tuple(codings)
        return MappedRecord(
            kind,
            resource_id,
            before + interval.columns + after,
            codings_row,
            _record_digest(kind, resource_id, before, interval, after, codings_row),
        )

    # -- one method per resource type: the codings, the columns and the Interval --

    def _encounter(self, record: _Columns, resource: dict, birth, codings: list) -> Interval:
        _add(codings, _CODE, resource.get("type"))
        hospitalization = read_object(resource.get("hospitalization"), "hospitalization")
        _add(codings, _DISCHARGE, hospitalization.get("dischargeDisposition"))
        encounter_class = read_object(resource.get("class"), "class")
        record.encounter_class = read_string(encounter_class.get("code"), "class.code")[:16]
        if resource.get("period") is not None:
            return self._field("period", period_interval, resource["period"])
        return NO_TIMING

    def _condition(self, record: _Columns, resource: dict, birth, codings: list) -> Interval:
        _add(codings, _CODE, resource.get("code"))
        record.clinical_active = _has_code(
            resource.get("clinicalStatus"),
            CONDITION_CLINICAL,
            {"active", "recurrence", "relapse"},
        )
        verification = resource.get("verificationStatus")
        record.verified = verification is None or _has_code(
            verification,
            CONDITION_VER,
            {"confirmed", "unconfirmed", "provisional", "differential"},
        )
        onset = self._field("onset[x]", choice_interval, resource, "onset", birth)
        abatement = self._field("abatement[x]", choice_interval, resource, "abatement", birth)
        unconvertible = any(k in resource for k in ("onsetString", "abatementString"))
        return interval(
            not unconvertible, onset.start, None if abatement.end_open else abatement.end
        )

    def _observation(self, record: _Columns, resource: dict, birth, codings: list) -> Interval:
        _add(codings, _CODE, resource.get("code"))
        timing = self._field("effective[x]", choice_interval, resource, "effective", birth)
        self._value(record, resource, codings)
        components = [
            self._component(component)
            for component in read_list(resource.get("component"), "component")
            if isinstance(component, dict)
        ]
        if components:
            record.components = json.dumps(components)
        encounter = read_object(resource.get("encounter"), "encounter")
        reference = read_string(encounter.get("reference"), "encounter.reference")
        record.encounter_ref = reference.rstrip("/").split("/")[-1][:128]
        return timing

    def _procedure(self, record: _Columns, resource: dict, birth, codings: list) -> Interval:
        _add(codings, _CODE, resource.get("code"))
        return self._field("performed[x]", choice_interval, resource, "performed", birth)

    def _immunization(self, record: _Columns, resource: dict, birth, codings: list) -> Interval:
        _add(codings, _CODE, resource.get("vaccineCode"))
        return self._field("occurrence[x]", choice_interval, resource, "occurrence", birth)

    def _diagnostic_report(self, record: _Columns, resource: dict, birth, codings) -> Interval:
        _add(codings, _CODE, resource.get("code"))
        return self._field("effective[x]", choice_interval, resource, "effective", birth)

    def _request(self, record: _Columns, resource: dict, birth, codings: list) -> Interval:
        """DeviceRequest and ServiceRequest."""
        _add(codings, _CODE, resource.get("codeCodeableConcept") or resource.get("code"))
        if resource.get("authoredOn"):
            return self._field("authoredOn", point_interval, resource["authoredOn"])
        return NO_TIMING

    def _medication_request(self, record: _Columns, resource: dict, birth, codings) -> Interval:
        self._medication_codes(resource, codings)
        return self._medication_period(record, resource)

    def _medication_dispense(self, record: _Columns, resource: dict, birth, codings) -> Interval:
        self._medication_codes(resource, codings)
        if resource.get("whenHandedOver"):
            return self._field("whenHandedOver", point_interval, resource["whenHandedOver"])
        return NO_TIMING

    def _medication_codes(self, resource: dict, codings: list) -> None:
        _add(codings, _CODE, resource.get("medicationCodeableConcept"))
        medication = self._medication(resource)
        if medication is not None:
            _add(codings, _MEDICATION_REF, medication.get("code"))

    def _coverage(self, record: _Columns, resource: dict, birth, codings: list) -> Interval:
        _add(codings, _CODE, resource.get("type"))
        if resource.get("period") is not None:
            return self._field("period", period_interval, resource["period"])
        return NO_TIMING

    @staticmethod
    def _resource_id(resource: dict) -> str:
        resource_id = read_string(resource.get("id"), "id", max_length=MAX_ID_LENGTH)
        if not resource_id:
            raise EntryError("id: missing (needed to re-import without duplicates)")
        return resource_id

    @staticmethod
    def _field(name, parser, *args):
        try:
            return parser(*args)
        except TimingError as error:
            raise EntryError(f"{name}: {error}") from None

    def _value(self, record: _Columns, resource: dict, codings: list) -> None:
        if "valueQuantity" in resource:
            quantity = read_object(resource["valueQuantity"], "valueQuantity")
            record.value_type = "quantity"
            if isinstance(quantity.get("value"), int | float):
                record.value_num = float(quantity["value"])
            record.value_unit = str(quantity.get("code") or quantity.get("unit") or "")[:32]
            record.value_comparator = str(quantity.get("comparator") or "")[:4]
        elif "valueCodeableConcept" in resource:
            record.value_type = "codeable"
            _add(codings, _VALUE, resource["valueCodeableConcept"])
        else:
            for key in resource:
                if key.startswith("value") and len(key) > 5 and key[5].isupper():
                    record.value_type = key[5:].lower()[:16]
                    if key in {"valueInteger"} and isinstance(resource[key], int):
                        record.value_num = float(resource[key])
                    break

    @staticmethod
    def _component(component: dict) -> dict:
        quantity = component.get("valueQuantity")
        row = {
            "codes": [f"{s}|{c}" for s, c in _codings(component.get("code"))],
            "value": None,
            "unit": "",
            "comparator": "",
        }
        if isinstance(quantity, dict):
            value = quantity.get("value")
            row["value"] = float(value) if isinstance(value, int | float) else None
            row["unit"] = str(quantity.get("code") or quantity.get("unit") or "")
            row["comparator"] = str(quantity.get("comparator") or "")
        return row

    def _medication(self, resource: dict) -> dict | None:
        reference = resource.get("medicationReference")
        if not isinstance(reference, dict):
            return None
        ref = str(reference.get("reference") or "")
        if ref.startswith("#"):
            for contained in resource.get("contained") or []:
                if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                    return contained
            return None
        target = self.resolve(reference)
        if target is not None and target.resource["resourceType"] == "Medication":
            return target.resource
        return None

    def _medication_period(self, record: _Columns, resource: dict) -> Interval:
        """The supply period of measures.md 2.4 as inclusive dates, or `period_unknown`."""
        dosages = read_list(resource.get("dosageInstruction"), "dosageInstruction")
        dosage = read_object(dosages[0] if dosages else None, "dosageInstruction[0]")
        timing = read_object(dosage.get("timing"), "dosageInstruction[0].timing")
        repeat = read_object(timing.get("repeat"), "dosageInstruction[0].timing.repeat")
        bounds = read_object(
            repeat.get("boundsPeriod"), "dosageInstruction[0].timing.repeat.boundsPeriod"
        )
        dispense = read_object(resource.get("dispenseRequest"), "dispenseRequest")
        validity = read_object(dispense.get("validityPeriod"), "dispenseRequest.validityPeriod")
        start = None
        for raw in (
            bounds.get("start"),
            resource.get("authoredOn"),
            validity.get("start"),
        ):
            if raw:
                start = self._field("authoredOn/boundsPeriod", parse_datetime, raw).local_date
                break
        supply = _duration_days(dispense.get("expectedSupplyDuration"))
        supply_field = "dispenseRequest.expectedSupplyDuration"
        if supply is None:
            quantity = read_object(dispense.get("quantity"), "dispenseRequest.quantity")
            quantity = _number(quantity.get("value"))
            dose = _dose(dosage)
            per_day = _doses_per_day(repeat)
            if quantity and dose and per_day:
                supply = quantity / (dose * per_day)
                supply_field = "dispenseRequest.quantity"
        if supply is not None and not 0 <= supply <= MAX_SUPPLY_DAYS:
            raise EntryError(f"{supply_field}: {supply:g} days is not plausible")
        repeats = dispense.get("numberOfRepeatsAllowed") or 0
        if isinstance(repeats, bool) or not isinstance(repeats, int) or not 0 <= repeats <= 1000:
            raise EntryError(
                f"dispenseRequest.numberOfRepeatsAllowed: must be a whole number, not {repeats!r}"
            )
        end = None
        if start is not None and supply is not None:
            total = supply * (1 + repeats)
            try:
                end = start + dt.timedelta(days=max(math.ceil(total) - 1, 0))
            except OverflowError:
                raise EntryError(
                    f"{supply_field}: the supply from {start} runs past the year 9999"
                ) from None
        elif start is not None and bounds.get("end"):
            end = self._field("boundsPeriod.end", parse_datetime, bounds["end"]).local_date
        if start is None or end is None:
            record.period_unknown = True
            return NO_TIMING
        return interval(True, _day_point(start), _day_point(end), False)


# Which method maps which resource type (the keys of PATIENT_LINK).
_MAP_BY_TYPE = {
    "Encounter": ResourceMapper._encounter,
    "Condition": ResourceMapper._condition,
    "Procedure": ResourceMapper._procedure,
    "Observation": ResourceMapper._observation,
    "Immunization": ResourceMapper._immunization,
    "DiagnosticReport": ResourceMapper._diagnostic_report,
    "MedicationRequest": ResourceMapper._medication_request,
    "MedicationDispense": ResourceMapper._medication_dispense,
    "DeviceRequest": ResourceMapper._request,
    "ServiceRequest": ResourceMapper._request,
    "Coverage": ResourceMapper._coverage,
}
assert _MAP_BY_TYPE.keys() == PATIENT_LINK.keys()

_DAYS_PER_UNIT = {
    "d": 1,
    "day": 1,
    "days": 1,
    "wk": 7,
    "week": 7,
    "weeks": 7,
    "mo": 30,
    "month": 30,
    "months": 30,
    "h": 1 / 24,
    "a": 365,
    "year": 365,
    "years": 365,
}


# A medication supply longer than this (with refills) is a data error, not a prescription.
MAX_SUPPLY_DAYS = 100 * 365


def _number(value) -> float | None:
    """A JSON number as float; anything else (strings, true/false) is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _duration_days(duration) -> float | None:
    if not isinstance(duration, dict) or _number(duration.get("value")) is None:
        return None
    unit = str(duration.get("code") or duration.get("unit") or "d").lower()
    factor = _DAYS_PER_UNIT.get(unit)
    return float(duration["value"]) * factor if factor else None


def _dose(dosage: dict) -> float | None:
    where = "dosageInstruction[0].doseAndRate"
    rates = read_list(dosage.get("doseAndRate"), where)
    if len(rates) != 1:
        return None
    rate = read_object(rates[0], f"{where}[0]")
    quantity = rate.get("doseQuantity") or read_object(
        rate.get("doseRange"), f"{where}[0].doseRange"
    ).get("high")
    value = _number(read_object(quantity, f"{where}[0].doseQuantity").get("value"))
    return value if value and value > 0 else None


def _doses_per_day(repeat: dict) -> float | None:
    frequency = _number(repeat.get("frequencyMax") or repeat.get("frequency") or 1)
    period = _number(repeat.get("period"))
    unit = repeat.get("periodUnit")
    if not frequency or not period or period < 0 or not isinstance(unit, str):
        return None
    factor = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1, "wk": 7, "mo": 30, "a": 365}
    if unit not in factor:
        return None
    return frequency / (period * factor[unit])
