"""FHIR import: bundle shapes, reference styles, idempotence, bad input, history, the command."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from patients.clinical import ClinicalCoding, ClinicalRecord, FhirPatientDetail, ImportRun
from patients.fhir.importer import import_documents
from patients.models import Patient

pytestmark = pytest.mark.django_db

LOINC = "http://loinc.org"


def patient(pid="p-1", **extra):
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "Rivera", "given": ["Ana"]}],
        "gender": "female",
        "birthDate": "1970-05-04",
        **extra,
    }


def observation(oid="obs-1", subject="Patient/p-1", **extra):
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2025-03-01T22:00:00-05:00",
        "valueQuantity": {"value": 7.2, "unit": "%", "code": "%"},
        **extra,
    }


def collection(*resources, full_urls=None):
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": (full_urls[i] if full_urls else f"{r['resourceType']}/{r['id']}"),
                "resource": r,
            }
            for i, r in enumerate(resources)
        ],
    }


def run_import(org, actor, *documents, partial=False):
    raw = [
        (f"file{i}.json", d if isinstance(d, bytes) else json.dumps(d).encode())
        for i, d in enumerate(documents)
    ]
    return import_documents(raw, organization=org, actor=actor, partial=partial)


def test_a_collection_bundle_creates_the_patient_and_normalized_records(org_a, system_user):
    run = run_import(org_a, system_user, collection(patient(), observation()))
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    created = Patient.objects.get(organization=org_a, source_id="p-1")
    record = ClinicalRecord.objects.get(patient=created)
    assert (record.resource_type, record.resource_id, record.import_run) == (
        "Observation",
        "obs-1",
        run,
    )
    # The day-level date is the date as written in its own offset, not the UTC date.
    assert str(record.start_date) == "2025-03-01"
    assert record.start_at.isoformat() == "2025-03-02T03:00:00+00:00"
    assert (record.value_type, record.value_num, record.value_unit) == ("quantity", 7.2, "%")
    assert ClinicalCoding.objects.filter(record=record, system=LOINC, code="4548-4").exists()
    assert run.counts["records_created"] == 1 and run.files[0]["sha256"]


def test_imported_patients_keep_history_naming_the_run_and_actor(org_a, system_user):
    run = run_import(org_a, system_user, collection(patient()))
    created = Patient.objects.get(source_id="p-1")
    history = created.history.get()
    assert history.history_user == system_user
    assert history.history_change_reason == f"FHIR import run #{run.pk}"


def test_reimporting_the_same_bundle_changes_nothing(org_a, system_user):
    bundle = collection(patient(), observation())
    run_import(org_a, system_user, bundle)
    first = list(ClinicalRecord.objects.values_list("id", "import_run_id"))
    again = run_import(org_a, system_user, bundle)
    assert again.counts["records_unchanged"] == 1
    assert again.counts["records_created"] == again.counts["patients_created"] == 0
    assert list(ClinicalRecord.objects.values_list("id", "import_run_id")) == first
    assert Patient.objects.get(source_id="p-1").history.count() == 1


def test_a_changed_resource_is_updated_in_place(org_a, system_user):
    run_import(org_a, system_user, collection(patient(), observation()))
    changed = observation(valueQuantity={"value": 9.5, "unit": "%", "code": "%"})
    run = run_import(org_a, system_user, collection(patient(), changed))
    assert run.counts["records_updated"] == 1
    assert ClinicalRecord.objects.get().value_num == 9.5


@pytest.mark.parametrize(
    "full_url, reference",
    [
        (
            "urn:uuid:6f1c0b5e-8a36-4b8e-9d5c-3d1b2a9f0e11",
            "urn:uuid:6f1c0b5e-8a36-4b8e-9d5c-3d1b2a9f0e11",
        ),
        ("https://ehr.example.org/fhir/Patient/p-1", "https://ehr.example.org/fhir/Patient/p-1"),
        ("https://ehr.example.org/fhir/Patient/p-1", "Patient/p-1"),
    ],
    ids=["urn-uuid", "absolute-url", "relative-to-absolute-fullurl"],
)
def test_references_resolve_by_full_url_or_type_and_id(org_a, system_user, full_url, reference):
    bundle = collection(
        patient(), observation(subject=reference), full_urls=[full_url, "urn:uuid:obs"]
    )
    run = run_import(org_a, system_user, bundle)
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert ClinicalRecord.objects.get().patient.source_id == "p-1"


def test_a_reference_matching_only_a_full_url_resolves(org_a, system_user):
    # The Patient's resource.id differs from the id in its fullUrl and in the reference.
    bundle = collection(
        patient(pid="internal-7"),
        observation(subject="Patient/ext-9"),
        full_urls=["http://x.org/fhir/Patient/ext-9", "Observation/obs-1"],
    )
    run = run_import(org_a, system_user, bundle)
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert ClinicalRecord.objects.get().patient.source_id == "internal-7"


def test_transaction_nested_and_parameters_bundles_are_flattened(org_a, system_user):
    inner = collection(observation(oid="obs-2"))
    transaction_bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "Patient/p-1",
                "resource": patient(),
                "request": {"method": "PUT", "url": "Patient/p-1"},
            },
            {"resource": observation(), "request": {"method": "POST", "url": "Observation"}},
            {"resource": inner},
        ],
    }
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [{"name": "return", "resource": transaction_bundle}],
    }
    run = run_import(org_a, system_user, wrapped)
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert sorted(ClinicalRecord.objects.values_list("resource_id", flat=True)) == [
        "obs-1",
        "obs-2",
    ]


def test_a_bundle_without_the_patient_resolves_it_from_the_database(org_a, system_user):
    run_import(org_a, system_user, collection(patient()))
    run = run_import(org_a, system_user, collection(observation()))
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert ClinicalRecord.objects.get().patient.source_id == "p-1"


def test_period_dates_and_open_ends_are_kept(org_a, system_user):
    encounter = {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p-1"},
        "period": {"start": "2025-12-31T22:00:00-05:00"},
    }
    run_import(org_a, system_user, collection(patient(), encounter))
    record = ClinicalRecord.objects.get()
    assert str(record.start_date) == "2025-12-31" and record.end_open and record.end_at is None
    assert record.encounter_class == "AMB"


def test_a_patient_without_birth_date_has_an_unknown_age(org_a, system_user):
    data = patient()
    del data["birthDate"]
    run_import(org_a, system_user, collection(data))
    assert FhirPatientDetail.objects.get().birth_date is None


BAD_INPUT = [
    (b"{not json", "malformed JSON"),
    (json.dumps([1, 2]).encode(), "expected a FHIR R4 Bundle or resource"),
    (json.dumps({"hello": "world"}).encode(), "expected a FHIR R4 Bundle or resource"),
    (
        json.dumps(collection(patient(), {"resourceType": "Obsrvation", "id": "x"})).encode(),
        "entry[1].resource.resourceType: unknown resource type 'Obsrvation'",
    ),
    (
        json.dumps(collection(patient(), observation(effectiveDateTime="2025-02-30"))).encode(),
        "entry[1] (Observation/obs-1): effective[x]: '2025-02-30' is not a real date",
    ),
    (
        json.dumps(
            collection(patient(), patient(pid="p-2"), observation(subject="Patient/nobody"))
        ).encode(),
        "entry[2] (Observation/obs-1): subject: reference 'Patient/nobody' resolves to nothing",
    ),
]


@pytest.mark.parametrize("raw, message", BAD_INPUT, ids=[m for _, m in BAD_INPUT])
def test_bad_input_is_rejected_whole_with_file_entry_and_field(org_a, system_user, raw, message):
    run = run_import(org_a, system_user, raw)
    assert run.status == ImportRun.Status.FAILED
    assert message in run.report and run.report.startswith("file0.json: ")
    assert not Patient.objects.filter(organization=org_a).exists()
    assert not ClinicalRecord.objects.exists()


def test_one_bad_file_rejects_the_whole_run_unless_partial(org_a, system_user):
    good = collection(patient(), observation())
    bad = collection(patient(pid="p-2", birthDate="1970-13-01"))
    run = run_import(org_a, system_user, good, bad)
    assert run.status == ImportRun.Status.FAILED
    assert not Patient.objects.exists()
    assert "file1.json: entry[0] (Patient/p-2).birthDate" in run.report

    partial = run_import(org_a, system_user, good, bad, partial=True)
    assert partial.status == ImportRun.Status.PARTIAL
    assert list(Patient.objects.values_list("source_id", flat=True)) == ["p-1"]
    assert [f["status"] for f in partial.files] == ["ok", "rejected"]


def test_the_command_imports_files_and_folders_and_reports(org_a, tmp_path):
    folder = tmp_path / "bundles"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(collection(patient(), observation())))
    (folder / "b.json").write_text(json.dumps(collection(patient(pid="p-2"))))
    out = io.StringIO()
    call_command("import_fhir", str(folder), organization="org-a", no_progress=True, stdout=out)
    assert "succeeded; bundles ok 2, rejected 0; patients +2" in out.getvalue()
    run = ImportRun.objects.get()
    assert run.actor.username == "carehub-system"
    assert {f["path"].rsplit("/", 1)[-1] for f in run.files} == {"a.json", "b.json"}


def test_the_command_fails_loudly_on_a_bad_file(org_a, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_fhir", str(bad), organization="org-a", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No organization"):
        call_command("import_fhir", str(bad), organization="nope", stdout=io.StringIO())


def test_create_organization_command(db):
    out = io.StringIO()
    call_command("create_organization", "north-clinic", name="North Clinic", stdout=out)
    created = Patient._meta.get_field("organization").related_model.objects.get(slug="north-clinic")
    assert created.name == "North Clinic" and created.history.get().history_user.username
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_organization", "north-clinic", stdout=io.StringIO())
