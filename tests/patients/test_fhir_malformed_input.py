"""Malformed FHIR never crashes an import: the bundle is rejected naming file, entry and field,
nothing is written, and the run ends failed or partial, never "running"."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from carehub import roles
from patients.clinical import ClinicalRecord, ImportRun
from patients.fhir.importer import import_documents
from patients.models import Patient
from tests.conftest import PASSWORD, make_persona
from tests.patients.test_fhir_import import collection, observation, patient

pytestmark = pytest.mark.django_db


def medication_request(**dispense):
    return {
        "resourceType": "MedicationRequest",
        "id": "mr-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p-1"},
        "authoredOn": "2025-02-01",
        "medicationCodeableConcept": {"coding": [{"system": "rxnorm", "code": "617314"}]},
        "dispenseRequest": dispense,
    }


def condition(**onset):
    return {
        "resourceType": "Condition",
        "id": "c-1",
        "subject": {"reference": "Patient/p-1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        **onset,
    }


def as_bytes(document) -> bytes:
    return json.dumps(document).encode()


def nested(depth: int) -> bytes:
    inner = "[" * depth + "]" * depth
    return (
        b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
        b'{"resourceType": "Basic", "id": "b", "extension": ' + inner.encode() + b"}}]}"
    )


LONG_A, LONG_B = "x" * 64 + "a", "x" * 64 + "b"

# (raw file, what the report must say); the report line also starts with the file name.
MALFORMED = {
    "datetime-overflows-at-year-9999": (
        as_bytes(collection(patient(), observation(effectiveDateTime="9999-12-31T23:59:59-12:00"))),
        "entry[1] (Observation/obs-1): effective[x]: '9999-12-31T23:59:59-12:00' is out of range",
    ),
    "datetime-underflows-at-year-1": (
        as_bytes(collection(patient(), observation(effectiveDateTime="0001-01-01T00:00:00+14:00"))),
        "entry[1] (Observation/obs-1): effective[x]: '0001-01-01T00:00:00+14:00' is out of range",
    ),
    "deceased-datetime-overflows": (
        as_bytes(collection(patient(deceasedDateTime="9999-12-31T23:00:00-14:00"))),
        "entry[0] (Patient/p-1).deceasedDateTime: '9999-12-31T23:00:00-14:00' is out of range",
    ),
    "onset-age-20000": (
        as_bytes(collection(patient(), condition(onsetAge={"value": 20000, "code": "a"}))),
        "entry[1] (Condition/c-1): onset[x]: an Age of 20000 years is not plausible",
    ),
    "onset-age-abc": (
        as_bytes(collection(patient(), condition(onsetAge={"value": "abc", "code": "a"}))),
        "entry[1] (Condition/c-1): onset[x]: an Age value must be a number, not 'abc'",
    ),
    "expected-supply-duration-1e15": (
        as_bytes(
            collection(
                patient(),
                medication_request(expectedSupplyDuration={"value": 1e15, "code": "d"}),
            )
        ),
        "entry[1] (MedicationRequest/mr-1): dispenseRequest.expectedSupplyDuration: "
        "1e+15 days is not plausible",
    ),
    "number-of-repeats-many": (
        as_bytes(
            collection(
                patient(),
                medication_request(
                    expectedSupplyDuration={"value": 30, "code": "d"},
                    numberOfRepeatsAllowed="many",
                ),
            )
        ),
        "entry[1] (MedicationRequest/mr-1): dispenseRequest.numberOfRepeatsAllowed: "
        "must be a whole number, not 'many'",
    ),
    "two-patients-share-an-id": (
        as_bytes(collection(patient(), patient(birthDate="1980-01-01"))),
        "entry[1] (Patient/p-1).id: 'p-1' is also the id of entry[0]",
    ),
    "ids-over-64-characters": (
        as_bytes(collection(patient(pid=LONG_A), patient(pid=LONG_B))),
        f"entry[0] (Patient/{LONG_A}).id: longer than 64 characters",
    ),
    "identifier-as-a-string": (
        as_bytes(collection(patient(identifier="MRN-1"))),
        "entry[0] (Patient/p-1).identifier: must be a list, not a string",
    ),
    "name-as-an-object": (
        as_bytes(collection(patient(name={"family": "Rivera"}))),
        "entry[0] (Patient/p-1).name: must be a list, not an object",
    ),
    "given-as-integers": (
        as_bytes(collection(patient(name=[{"family": "Rivera", "given": [1, 2]}]))),
        "entry[0] (Patient/p-1).name[0].given[0]: must be a string, not a number",
    ),
    "nul-in-a-string": (
        as_bytes(collection(patient(name=[{"family": "Ri\x00vera"}]))),
        "entry[0].resource.name[0].family: contains a NUL character",
    ),
    "lone-surrogate": (
        as_bytes(collection(patient(name=[{"family": "Ri\ud800vera"}]))),
        "entry[0].resource.name[0].family: contains a lone surrogate",
    ),
    "nan": (
        as_bytes(collection(patient(), observation(valueQuantity={"value": float("nan")}))),
        "entry[1].resource.valueQuantity.value: NaN is not a JSON number",
    ),
    "json-nested-thousands-deep": (
        nested(5000),
        "JSON nested deeper than",
    ),
    "json-nested-hundreds-deep": (
        nested(300),
        "entry[0].resource.extension[0]",
    ),
    "resource-type-as-a-list": (
        as_bytes(collection(patient(), {**observation(), "resourceType": ["Observation"]})),
        "entry[1].resource.resourceType: unknown resource type ['Observation']",
    ),
    "dosage-instruction-as-an-object": (
        as_bytes(
            collection(patient(), {**medication_request(), "dosageInstruction": {"text": "daily"}})
        ),
        "entry[1] (MedicationRequest/mr-1): dosageInstruction: must be a list, not an object",
    ),
    "entry-request-as-a-string": (
        as_bytes(
            {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": "DELETE"}]}
        ),
        "entry[0].request: must be an object, not a string",
    ),
}


def run_import(org, actor, *raws, partial=False):
    documents = [(f"file{i}.json", raw) for i, raw in enumerate(raws)]
    return import_documents(documents, organization=org, actor=actor, partial=partial)


@pytest.mark.parametrize("raw, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_bundles_are_rejected_naming_file_entry_and_field(
    org_a, system_user, raw, message
):
    run = run_import(org_a, system_user, raw)
    assert run.status == ImportRun.Status.FAILED
    assert f"file0.json: {message}" in run.report
    assert not Patient.objects.exists() and not ClinicalRecord.objects.exists()


def test_identical_copies_of_one_patient_are_one_patient(org_a, system_user):
    # Nested bundles repeat resources; an identical copy is the same patient, not a conflict.
    run = run_import(org_a, system_user, as_bytes(collection(patient(), patient(), observation())))
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert Patient.objects.get().source_id == "p-1"


def test_with_partial_a_bad_file_in_the_middle_does_not_stop_the_later_files(org_a, system_user):
    first = as_bytes(collection(patient()))
    bad = MALFORMED["identifier-as-a-string"][0].replace(b'"p-1"', b'"p-2"')
    last = as_bytes(collection(patient(pid="p-3")))
    run = run_import(org_a, system_user, first, bad, last, partial=True)
    assert run.status == ImportRun.Status.PARTIAL
    assert [f["status"] for f in run.files] == ["ok", "rejected", "ok"]
    assert sorted(Patient.objects.values_list("source_id", flat=True)) == ["p-1", "p-3"]


def test_an_unforeseen_error_in_one_file_rejects_that_file_and_the_run_still_ends(
    org_a, system_user, monkeypatch
):
    # No known input crashes the importer any more; this injects a programming error to show
    # the safety net: the file is rejected with the error's type, later files are read, and
    # the run is finished rather than left "running".
    from patients.fhir import bundle as bundle_module

    original = bundle_module.BundleImport.run

    def broken(self):
        if self.report.path == "file1.json":
            raise RuntimeError("boom")
        return original(self)

    monkeypatch.setattr(bundle_module.BundleImport, "run", broken)
    first, middle, last = (as_bytes(collection(patient(pid=p))) for p in ("p-1", "p-2", "p-3"))
    run = run_import(org_a, system_user, first, middle, last, partial=True)
    assert run.status == ImportRun.Status.PARTIAL
    assert "file1.json: unexpected error (RuntimeError)" in run.report
    assert sorted(Patient.objects.values_list("source_id", flat=True)) == ["p-1", "p-3"]

    run = run_import(org_a, system_user, first, middle, last)
    assert run.status == ImportRun.Status.FAILED and run.finished_at is not None


def test_an_interrupted_run_is_recorded_as_failed(org_a, system_user, monkeypatch):
    from patients.fhir import bundle as bundle_module

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_module.BundleImport, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_import(org_a, system_user, as_bytes(collection(patient())))
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED
    assert "interrupted" in run.report and run.finished_at is not None


@pytest.mark.parametrize("case", ["nan", "nul-in-a-string", "json-nested-thousands-deep"])
def test_the_api_refuses_malformed_bodies_with_400(client, org_a, system_user, case):
    supervisor = make_persona("sup-a", roles.SUPERVISOR, [org_a], system_user)
    client.login(username=supervisor.username, password=PASSWORD)
    raw, message = MALFORMED[case]
    response = client.post(
        "/api/fhir/import?organization=org-a", data=raw, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert any(message in line for line in response.json()["errors"])
    assert ImportRun.objects.get().status == ImportRun.Status.FAILED
    assert not Patient.objects.exists()


def test_the_command_reports_every_malformed_file_with_partial(org_a, tmp_path):
    for name, (raw, _message) in MALFORMED.items():
        (tmp_path / f"{name}.json").write_bytes(raw)
    (tmp_path / "good.json").write_bytes(as_bytes(collection(patient(pid="good-1"))))
    out = io.StringIO()
    call_command("import_fhir", str(tmp_path), organization="org-a", partial=True, stdout=out)
    for name, (_raw, message) in MALFORMED.items():
        assert f"{name}.json: {message}" in out.getvalue()
    assert list(Patient.objects.values_list("source_id", flat=True)) == ["good-1"]
    assert ImportRun.objects.get().status == ImportRun.Status.PARTIAL

    with pytest.raises(CommandError, match="Nothing imported"):
        call_command(
            "import_fhir", str(tmp_path / "nan.json"), organization="org-a", stdout=io.StringIO()
        )
