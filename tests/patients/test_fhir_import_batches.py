"""FHIR import in batches: files of one batch see each other as sequential import would, a
database failure in a batch rejects only its culprit, re-import writes nothing, and the writes
are set-based (the queries do not grow with the number of files)."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carehub import roles
from patients.clinical import ClinicalRecord, FhirPatientDetail, ImportRun
from patients.fhir import batch as batch_module
from patients.fhir.importer import import_documents
from patients.models import Patient
from tests.conftest import make_persona
from tests.patients.factories import OrganizationFactory, PatientFactory
from tests.patients.test_fhir_import import collection, observation, patient

pytestmark = pytest.mark.django_db


def files(*documents) -> list[tuple[str, bytes]]:
    return [(f"file{i}.json", json.dumps(d).encode()) for i, d in enumerate(documents)]


def run_import(org, actor, *documents, partial=False):
    return import_documents(files(*documents), organization=org, actor=actor, partial=partial)


def test_a_file_references_a_patient_an_earlier_file_of_the_batch_creates(org_a, system_user):
    run = run_import(
        org_a,
        system_user,
        collection(patient(pid="p-1")),
        collection(observation(subject="Patient/p-1")),
    )
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert ClinicalRecord.objects.get().patient == Patient.objects.get(source_id="p-1")
    assert run.report == ""  # resolved, not attached by the lone-patient fallback


def test_a_reference_across_two_batches_resolves_from_the_first_batch(
    org_a, system_user, monkeypatch
):
    monkeypatch.setattr(batch_module, "BATCH_FILES", 2)
    run = run_import(
        org_a,
        system_user,
        collection(patient(pid="p-1")),
        collection(patient(pid="p-2")),
        collection(observation(oid="obs-3", subject="Patient/p-1")),
    )
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert ClinicalRecord.objects.get(resource_id="obs-3").patient.source_id == "p-1"


def test_the_same_patient_in_two_files_of_a_batch_ends_as_sequential_import_leaves_it(
    org_a, system_user
):
    first = collection(patient(), observation())
    second = collection(
        patient(name=[{"family": "Rivers", "given": ["Ana"]}], birthDate="1971-06-05"),
        observation(valueQuantity={"value": 9.5, "unit": "%", "code": "%"}),
    )
    run = run_import(org_a, system_user, first, second)
    assert run.status == ImportRun.Status.SUCCEEDED, run.report

    # The same two files imported one run each, into another organization.
    org_b = OrganizationFactory(slug="org-b")
    for document in (first, second):
        assert run_import(org_b, system_user, document).status == ImportRun.Status.SUCCEEDED

    def state(org):
        person = Patient.objects.get(organization=org)
        record = ClinicalRecord.objects.get(organization=org)
        return (
            person.source_id,
            person.family_name,
            person.birth_date,
            FhirPatientDetail.objects.get(patient=person).birth_date,
            record.value_num,
            list(record.codings.values_list("system", "code")),
        )

    assert state(org_a) == state(org_b)
    assert state(org_a)[1:5] == ("Rivers", *[__import__("datetime").date(1971, 6, 5)] * 2, 9.5)
    # Counts are those of importing the files one after the other.
    assert (run.counts["patients_created"], run.counts["patients_updated"]) == (1, 1)
    assert (run.counts["records_created"], run.counts["records_updated"]) == (1, 1)
    # One history row, holding the final content (the batch wrote the patient once).
    history = Patient.objects.get(organization=org_a).history.get()
    assert (history.history_type, history.family_name) == ("+", "Rivers")


def test_created_patients_history_rows_carry_the_actor_and_the_reason(org_a, system_user):
    importer = make_persona("importer-a", roles.SUPERVISOR, [org_a], system_user)
    run = run_import(
        org_a,
        importer,
        collection(patient(pid="p-1")),
        collection(patient(pid="p-2"), patient(pid="p-3")),
    )
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    history = Patient.history.filter(organization=org_a)
    assert history.count() == 3
    assert {(h.history_type, h.history_user_id, h.history_change_reason) for h in history} == {
        ("+", importer.pk, f"FHIR import run #{run.pk}")
    }
    assert sorted(history.values_list("source_id", flat=True)) == ["p-1", "p-2", "p-3"]


def test_a_changed_patient_gets_one_history_row_naming_the_run(org_a, system_user):
    run_import(org_a, system_user, collection(patient()))
    run = run_import(
        org_a, system_user, collection(patient(name=[{"family": "Rivers", "given": ["Ana"]}]))
    )
    assert run.counts["patients_updated"] == 1
    changed = Patient.objects.get().history.filter(history_type="~").get()
    assert changed.family_name == "Rivers"
    assert changed.history_change_reason == f"FHIR import run #{run.pk}"
    assert changed.history_user == system_user


def test_reimporting_a_batch_writes_nothing(org_a, system_user):
    documents = [
        collection(patient(pid=f"p-{i}"), observation(oid=f"obs-{i}", subject=f"Patient/p-{i}"))
        for i in range(4)
    ]
    documents.append(collection(observation(oid="obs-x", subject="Patient/p-0")))
    first = run_import(org_a, system_user, *documents)
    assert first.status == ImportRun.Status.SUCCEEDED, first.report

    def snapshot():
        return (
            Patient.history.count(),
            list(Patient.objects.order_by("id").values_list("id", "updated_at")),
            list(FhirPatientDetail.objects.order_by("id").values_list("id", "import_run_id")),
            list(ClinicalRecord.objects.order_by("id").values_list("id", "import_run_id")),
            list(ClinicalRecord.objects.order_by("id").values_list("codings__id", flat=True)),
        )

    before = snapshot()
    again = run_import(org_a, system_user, *documents)
    assert again.status == ImportRun.Status.SUCCEEDED, again.report
    assert snapshot() == before
    assert again.counts["records_unchanged"] == 5
    assert again.counts["patients_created"] == again.counts["patients_updated"] == 0
    assert again.counts["records_created"] == again.counts["records_updated"] == 0


def mrn_clash(org):
    """A file whose patient the database refuses: its MRN and FHIR id, 'p-9', are both the
    MRN of another patient, so the insert breaks the unique (organization, MRN) constraint."""
    PatientFactory(organization=org, mrn="p-9", source_id="someone-else")
    return collection(patient(pid="p-9"))


def test_with_partial_a_database_error_in_a_batch_rejects_only_the_culprit(org_a, system_user):
    culprit = mrn_clash(org_a)
    run = run_import(
        org_a,
        system_user,
        collection(patient(pid="p-1"), observation(subject="Patient/p-1")),
        culprit,
        collection(patient(pid="p-3")),
        partial=True,
    )
    assert run.status == ImportRun.Status.PARTIAL
    assert [f["status"] for f in run.files] == ["ok", "rejected", "ok"]
    assert "file1.json: unexpected error (IntegrityError); nothing imported" in run.report
    assert sorted(Patient.objects.filter(source_id__startswith="p-").values_list(
        "source_id", flat=True
    )) == ["p-1", "p-3"]  # fmt: skip
    assert ClinicalRecord.objects.get().patient.source_id == "p-1"
    assert run.counts["bundles_ok"] == 2 and run.counts["records_created"] == 1


def test_without_partial_a_database_error_lands_nothing_and_names_the_culprit(org_a, system_user):
    culprit = mrn_clash(org_a)
    run = run_import(org_a, system_user, collection(patient(pid="p-1")), culprit)
    assert run.status == ImportRun.Status.FAILED and run.finished_at is not None
    assert "file1.json: unexpected error (IntegrityError)" in run.report
    assert not Patient.objects.filter(source_id="p-1").exists()


def test_queries_do_not_grow_with_the_number_of_files(org_a, system_user):
    def queries(count: int, offset: int) -> int:
        documents = [
            collection(
                patient(pid=f"q-{offset + i}"),
                observation(oid=f"o-{i}", subject=f"Patient/q-{offset + i}"),
            )
            for i in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            run = run_import(org_a, system_user, *documents)
        assert run.status == ImportRun.Status.SUCCEEDED, run.report
        return len(captured)

    # Per file, the import used to run about 13 queries. Now a batch runs a fixed set of
    # statements; only SQLite's 999-parameter limit splits the larger inserts in a few more.
    few, many = queries(3, 1000), queries(60, 0)
    assert many <= few + 10, (few, many)


def test_the_command_prints_a_summary_a_person_can_read(org_a, tmp_path):
    for i in range(3):
        (tmp_path / f"b{i}.json").write_text(
            json.dumps(collection(patient(pid=f"p-{i}"), observation(subject=f"Patient/p-{i}")))
        )
    (tmp_path / "bad.json").write_text("{")
    out = io.StringIO()
    call_command(
        "import_fhir", str(tmp_path), organization="org-a", partial=True, no_progress=True,
        stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "files:     3 imported, 1 rejected" in text
    assert "patients:  3 created, 0 updated" in text
    assert "records:   3 created, 0 updated, 0 unchanged" in text
    assert "resources: 6 in " in text and "/s)" in text
    assert "bad.json: malformed JSON" in text
