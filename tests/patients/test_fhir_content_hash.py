"""A record's content hash is sha256 of repr((kind, id, values, codings)), as stored by earlier
imports: the mapping spells it from cached parts, and must spell exactly the same text (else a
re-import after an upgrade would rewrite every record)."""

import pytest

from patients.fhir.batch import FileReport
from patients.fhir.bundle import BundleImport
from patients.fhir.resources import Entry, _digest


def entries():
    patient = {"resourceType": "Patient", "id": "p-1", "birthDate": "1970-05-06"}
    records = [
        {"resourceType": "Encounter", "id": "e-1", "status": "finished",
         "class": {"code": "AMB"}, "period": {"start": "2025-01-02T10:00:00+02:00"},
         "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185464004"}]}]},
        {"resourceType": "Observation", "id": "o-1", "status": "final",
         "effectiveDateTime": "2025-03", "valueQuantity": {"value": -0.0, "unit": "mg"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}},
        {"resourceType": "Observation", "id": "o-2", "status": "final",
         "effectiveDateTime": "2025-03", "valueQuantity": {"value": 0.0, "unit": "mg"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}},
        {"resourceType": "Condition", "id": "c-1", "onsetAge": {"value": 40, "code": "a"},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}},
        {"resourceType": "Procedure", "id": "pr-1", "performedDateTime": "2024",
         "code": {"coding": []}},
    ]  # fmt: skip
    resources = [patient] + [{**r, "subject": {"reference": "Patient/p-1"}} for r in records]
    return [Entry(f"entry[{i}]", "", r) for i, r in enumerate(resources)]


@pytest.mark.parametrize("repeat", [1, 2])  # the second time from the spelling caches
def test_content_hash_is_the_digest_of_the_stored_values(repeat):
    plan = BundleImport("f.json", entries(), FileReport(path="f.json")).run()
    assert len(plan.records) == 5
    for _patient, mapped in plan.records:
        expected = _digest(mapped.kind, mapped.resource_id, mapped.values, mapped.codings)
        assert mapped.content_hash == expected, mapped.resource_id
