"""The vocabulary measure definitions are written in.

A measure version is a `MeasureDefinition`: an age range, an optional sex rule, the qualifying
encounter value sets, required diagnoses, a list of exclusion criteria and the numerator
criterion, each a `Criterion(kind, params)` the engine knows how to evaluate for a whole panel
at once. Which records count (status, intent, category, verification) differs by version and
lives in `RecordRules`, so MP2025 and MP2026 are two data values, not two code paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
CVX = "http://hl7.org/fhir/sid/cvx"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"

ORDER_FAMILY = frozenset(
    {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
)
FINAL = frozenset({"final", "amended", "corrected"})


def code(system: str, value: str) -> str:
    """A direct-reference code, used where a value-set OID would be."""
    return f"{system}|{value}"


@dataclass(frozen=True)
class RecordRules:
    """Which records count, per measures.md 1.4."""

    encounter_statuses: frozenset[str]
    lab_needs_category: bool
    study_needs_imaging: bool
    assessment_needs_survey: bool
    medication_intents: frozenset[str]
    medication_reference: bool
    device_intents: frozenset[str]
    device_checks_do_not_perform: bool
    service_intents: frozenset[str]
    verified_conditions: bool
    sex_from_extension: bool
    procedure_statuses: frozenset[str] = frozenset({"completed"})


@dataclass(frozen=True)
class Criterion:
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def __hash__(self) -> int:
        return hash((self.kind, self.label))


@dataclass(frozen=True)
class MeasureDefinition:
    cms: str
    version: str  # "MP2025", "MP2026"
    title: str
    first_year: int
    inverse: bool
    rules: RecordRules
    age: tuple[int, int | None]
    female_only: bool
    encounters: tuple[str, ...]  # value-set OIDs or direct codes of a qualifying visit
    ip_criteria: tuple[Criterion, ...]
    exclusions: tuple[Criterion, ...]
    numerator: Criterion
    # Value-set expansions used: the latest complete one on or before this date.
    valueset_cutoff: str | None = None
    description: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.cms, self.version)

    def value_set_keys(self) -> set[str]:
        """Every OID and direct code the definition mentions (walks the criteria params)."""
        return set(self.encounters) | named_keys(
            list(self.ip_criteria) + list(self.exclusions) + [self.numerator]
        )


def named_keys(value) -> set[str]:
    """Every OID and direct code named in criteria or their parameters: the values of keys
    `vs`, `vss`, `*_vs` and `*_vss`, at any depth."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, Criterion):
            walk(value.params)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in {"vs", "vss"} or key.endswith("_vs") or key.endswith("_vss"):
                    found.update([item] if isinstance(item, str) else item)
                else:
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(value)
    return found
