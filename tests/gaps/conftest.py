"""Shared test data for the gap engine.

The official eCQM material lives beside the repository in ../shared (never in the repo: the
value sets contain licensed codes). Tests that need it skip with a reason when it is absent.
Value sets are loaded once per session (they are reference data no other test counts); patients
and clinical records are created inside each test's transaction.
"""

import datetime as dt
import io
import json
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
ECQM = SHARED / "ecqm"
VALUESETS_2024 = ECQM / "valuesets" / "qicore-2024"
TESTCASES = ECQM / "testcases"

needs_shared = pytest.mark.skipif(
    not VALUESETS_2024.is_dir(),
    reason=f"official eCQM test data not found at {ECQM} (checkout without ../shared)",
)


@pytest.fixture(scope="session")
def valuesets_2024(django_db_setup, django_db_blocker):
    if not VALUESETS_2024.is_dir():
        pytest.skip(f"official value sets not found at {VALUESETS_2024}")
    with django_db_blocker.unblock():
        call_command("load_valuesets", str(VALUESETS_2024), stdout=io.StringIO())
    return VALUESETS_2024


def pick_code(oid: str, *, avoid_cpt: bool = True, not_in: tuple[str, ...] = ()) -> dict:
    """A coding from a loaded value set, so no test hard-codes licensed codes."""
    from gaps.models import ValueSetCode

    codes = ValueSetCode.objects.filter(value_set__oid=oid).order_by("system", "code")
    if avoid_cpt:
        codes = codes.exclude(system="http://www.ama-assn.org/go/cpt")
    for other in not_in:
        codes = codes.exclude(
            code__in=ValueSetCode.objects.filter(value_set__oid=other).values("code")
        )
    row = codes.first()
    assert row is not None, f"value set {oid} has no usable code loaded"
    return {"system": row.system, "code": row.code}


def concept(coding: dict) -> dict:
    return {"coding": [coding]}


class BundleBuilder:
    """A small QI-Core-ish patient bundle written in a test, resource by resource."""

    def __init__(self, *, birth_date: str, gender: str = "female", sex_extension: str = ""):
        self.patient_id = str(uuid.uuid4())
        patient = {
            "resourceType": "Patient",
            "id": self.patient_id,
            "name": [{"family": "Test", "given": ["Case"]}],
            "gender": gender,
            "birthDate": birth_date,
        }
        if sex_extension:
            patient["extension"] = [
                {
                    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-sex",
                    "valueCode": sex_extension,
                }
            ]
        self.entries = [patient]

    def add(self, resource_type: str, **fields) -> dict:
        resource = {
            "resourceType": resource_type,
            "id": f"{resource_type}-{len(self.entries)}",
            "subject": {"reference": f"Patient/{self.patient_id}"},
            **fields,
        }
        if resource_type == "Immunization":
            resource["patient"] = resource.pop("subject")
        self.entries.append(resource)
        return resource

    def encounter(self, oid: str, start: str, end: str | None = None, status="finished"):
        return self.add(
            "Encounter",
            status=status,
            type=[concept(pick_code(oid))],
            period={"start": start, "end": end or start},
        )

    def lab(self, oid: str, when: str, value=None, status="final", code=None):
        fields = {
            "status": status,
            "category": [
                concept(
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                )
            ],
            "code": concept(code or pick_code(oid)),
            "effectiveDateTime": when,
        }
        if value is not None:
            fields.update(value)
        return self.add("Observation", **fields)

    def bundle(self) -> dict:
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in self.entries
            ],
        }

    def raw(self) -> bytes:
        return json.dumps(self.bundle()).encode()


def evaluate_one(builder: BundleBuilder, organization, actor, cms: str, year: int, version=None):
    """Import one builder's bundle, evaluate one measure, return its MeasureResult."""
    from gaps.models import MeasureResult
    from gaps.services import evaluate_measures
    from patients.fhir.importer import import_documents

    run = import_documents([("test", builder.raw())], organization=organization, actor=actor)
    assert run.status == "succeeded", run.report
    evaluate_measures(
        organization,
        period_start=dt.date(year, 1, 1),
        period_end=dt.date(year, 12, 31),
        actor=actor,
        measures=[cms],
        version=version,
    )
    return MeasureResult.objects.get(
        patient__source_id=builder.patient_id, measure__cms=cms, period_start=dt.date(year, 1, 1)
    )
