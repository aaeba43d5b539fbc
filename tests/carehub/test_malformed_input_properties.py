"""Generated malformed FHIR, value sets and gap lists through every entry point that takes them.

Each entry point (import_fhir and load_valuesets and import_gap_list commands, POST
/api/fhir/import, the admin gap-list upload) must, for any input: let no exception escape but
its own refusal, name the problem, write nothing when it refuses, and never leave an import
run "running". Inputs are a valid document with a few values replaced by hostile ones (NUL,
lone surrogates, NaN, 64-bit+ integers, impossible dates, wrong JSON types, nesting thousands
deep) or deleted, or plain garbage.
"""

from __future__ import annotations

import copy
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaps.care_gaps import CareGap, GapListImport
from gaps.models import ValueSet, ValueSetCode
from patients.clinical import ClinicalRecord, ImportRun
from patients.models import Patient
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db

# Bounded for CI: a few seconds per entry point; a failure prints the smallest input.
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MR = "http://terminology.hl7.org/CodeSystem/v2-0203"
REF = {"reference": "Patient/p-1"}
RESOURCES = [
    {
        "resourceType": "Patient",
        "id": "p-1",
        "identifier": [{"type": {"coding": [{"system": MR, "code": "MR"}]}, "value": "M1"}],
        "name": [{"family": "Rivera", "given": ["Ana"]}],
        "gender": "female",
        "birthDate": "1970-05-04",
    },
    {
        "resourceType": "Observation",
        "id": "o-1",
        "status": "final",
        "subject": REF,
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "effectiveDateTime": "2025-03-01T22:00:00-05:00",
        "valueQuantity": {"value": 7.2, "unit": "%"},
    },
    {
        "resourceType": "Condition",
        "id": "c-1",
        "subject": REF,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        "onsetAge": {"value": 40, "code": "a"},
    },
    {
        "resourceType": "MedicationRequest",
        "id": "mr-1",
        "subject": REF,
        "intent": "order",
        "authoredOn": "2025-02-01",
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1}}],
            }
        ],
        "dispenseRequest": {"quantity": {"value": 30}, "numberOfRepeatsAllowed": 1},
    },
    {
        "resourceType": "Encounter",
        "id": "e-1",
        "subject": REF,
        "class": {"code": "AMB"},
        "period": {"start": "2025-01-01T09:00:00Z", "end": "2025-01-01T10:00:00Z"},
    },
]
BUNDLE = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": f"{r['resourceType']}/{r['id']}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in RESOURCES
    ],
}
VALUE_SET = {
    "resourceType": "ValueSet",
    "url": "http://cts.nlm.nih.gov/fhir/ValueSet/9.9.9.7",
    "version": "1",
    "name": "Example",
    "expansion": {
        "identifier": "exp-1",
        "timestamp": "2024-05-02T00:00:00Z",
        "total": 1,
        "contains": [{"system": "http://example.org/cs", "code": "a", "display": "A"}],
    },
}


def paths(document, prefix=()):
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths(value, (*prefix, index))


DEEP = "__deeply_nested__"
hostile_text = st.sampled_from(
    [
        "a\x00b",
        "x\ud800",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "2025-02-30",
        "",
        "x" * 70,
        "Patient/",
        "#",
        "many",
        "=HYPERLINK(1)",
    ]
) | st.text(max_size=12)
hostile_number = st.sampled_from(
    [float("nan"), float("inf"), 1e15, 1e308, 2**64, -(2**70), 20000, -1, 0, 0.5]
) | st.integers(min_value=-(10**6), max_value=10**6)
leaf = st.none() | st.booleans() | hostile_text | hostile_number | st.just(DEEP)
json_value = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["value", "code", "reference", "start", "coding", "system", "resource"])
            | st.text(max_size=6),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


def mutated(base: dict):
    """A JSON document (bytes): `base` with 1-3 values replaced or deleted, or garbage."""
    targets = list(paths(base))[1:]
    edits = st.lists(
        st.tuples(st.sampled_from(targets), json_value, st.booleans()), min_size=1, max_size=3
    )

    def apply(changes) -> bytes:
        document = copy.deepcopy(base)
        for path, value, delete in changes:
            parent = document
            try:
                for key in path[:-1]:
                    parent = parent[key]
                if delete and isinstance(parent, dict):
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = value
            except (KeyError, IndexError, TypeError):
                continue  # an earlier edit changed the shape under this path
        text = json.dumps(document, allow_nan=True)  # ensure_ascii: surrogates stay \\udXXX
        return text.replace(f'"{DEEP}"', "[" * 3000 + "]" * 3000, 1).encode()

    serialized = json.dumps(base).encode()
    garbage = st.binary(max_size=64) | st.integers(1, len(serialized) - 1).map(
        lambda cut: serialized[:cut]
    )
    return edits.map(apply) | garbage


def rolled_back(check):
    """Run one generated example in a savepoint that is always rolled back."""
    savepoint = transaction.savepoint()
    try:
        check()
    finally:
        transaction.savepoint_rollback(savepoint)


def assert_no_run_left_running():
    assert not ImportRun.objects.filter(status=ImportRun.Status.RUNNING).exists()


def clinical_rows() -> tuple[int, int]:
    return Patient.objects.count(), ClinicalRecord.objects.count()


def assert_run_named_its_problems(run: ImportRun, before: tuple[int, int], file_name: str):
    assert run.status in (ImportRun.Status.SUCCEEDED, ImportRun.Status.FAILED), run.status
    if run.status == ImportRun.Status.FAILED:
        lines = run.report.splitlines()
        assert lines, "a refused bundle says why"
        assert all(
            line.startswith(f"{file_name}: ") and len(line) > len(file_name) + 3 for line in lines
        ), lines
        assert not any("unexpected error" in line for line in lines), lines
        assert clinical_rows() == before, "a refused bundle writes nothing"


# -- FHIR --------------------------------------------------------------------------------------


@PROPERTY
@given(raw=mutated(BUNDLE))
def test_import_fhir_command(org_a, tmp_path, raw):
    def check():
        path = tmp_path / "bundle.json"
        path.write_bytes(raw)
        before = clinical_rows()
        try:
            call_command(
                "import_fhir",
                str(path),
                organization="org-a",
                no_progress=True,
                stdout=io.StringIO(),
            )
        except CommandError as error:
            assert "Nothing imported" in str(error)
        assert_no_run_left_running()
        assert_run_named_its_problems(ImportRun.objects.latest("id"), before, str(path))

    rolled_back(check)


@PROPERTY
@given(raws=st.lists(mutated(BUNDLE), min_size=2, max_size=3))
def test_import_fhir_command_with_partial_reads_every_file(org_a, tmp_path, raws):
    def check():
        folder = tmp_path / "bundles"
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for index, raw in enumerate(raws):
            (folder / f"{index}.json").write_bytes(raw)
        try:
            call_command(
                "import_fhir",
                str(folder),
                organization="org-a",
                partial=True,
                no_progress=True,
                stdout=io.StringIO(),
            )
        except CommandError as error:  # every file was bad
            assert "Nothing imported" in str(error)
        assert_no_run_left_running()
        run = ImportRun.objects.latest("id")
        assert len(run.files) == len(raws), "every file is read, whatever came before it"
        for report in run.files:
            assert report["status"] in ("ok", "rejected")
            if report["status"] == "rejected":
                assert report["errors"] and not any(
                    "unexpected error" in error for error in report["errors"]
                )

    rolled_back(check)


@PROPERTY
@given(raw=mutated(BUNDLE))
def test_fhir_import_api(client, supervisor_a, raw):
    client.force_login(supervisor_a)

    def check():
        before = clinical_rows()
        response = client.post(
            "/api/fhir/import?organization=org-a", data=raw, content_type="application/json"
        )
        assert response.status_code in (201, 400), response.status_code
        assert_no_run_left_running()
        run = ImportRun.objects.latest("id")
        assert_run_named_its_problems(run, before, "request body")
        if response.status_code == 400:
            assert response.json()["errors"]

    rolled_back(check)


# -- value sets --------------------------------------------------------------------------------


@PROPERTY
@given(raw=mutated(VALUE_SET))
def test_load_valuesets_command(db, tmp_path, raw):
    def check():
        path = tmp_path / "vs.json"
        path.write_bytes(raw)
        before = (ValueSet.objects.count(), ValueSetCode.objects.count())
        err = io.StringIO()
        try:
            call_command("load_valuesets", str(path), stdout=io.StringIO(), stderr=err)
        except CommandError as error:
            assert "No value set loaded" in str(error)
            problems = [line for line in err.getvalue().splitlines() if line.startswith(str(path))]
            assert problems and all(len(line) > len(str(path)) + 3 for line in problems)
            assert (ValueSet.objects.count(), ValueSetCode.objects.count()) == before

    rolled_back(check)


# -- gap lists (CSV) ---------------------------------------------------------------------------

COLUMN = st.sampled_from(
    ["mrn", "member_id", "measure", "due_date", "missing", "source", "last_service_date", "MRN"]
) | st.text(max_size=6)
CELL = st.sampled_from(
    [
        "A100",
        "M-100",
        "CMS130",
        "COL",
        "2026-12-31",
        "12/31/2026",
        "0001-01-01",
        "9999-12-31",
        "x\x00y",
        '"',
        "=cmd|' /C calc'!A0",
        "",
        "x" * 140_000,
    ]
) | st.text(max_size=10)


@st.composite
def gap_list_files(draw) -> bytes:
    header = draw(st.lists(COLUMN, min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(CELL, max_size=7), max_size=4))
    text = "\n".join(",".join(cells) for cells in [header, *rows])
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate makes invalid UTF-8


def gap_list_state() -> tuple[int, int]:
    return GapListImport.objects.count(), CareGap.objects.count()


@pytest.fixture
def listed_patient(org_a):
    return PatientFactory(organization=org_a, mrn="A100", member_id="M-100")


@PROPERTY
@given(content=gap_list_files())
def test_import_gap_list_command(listed_patient, tmp_path, content):
    def check():
        path = tmp_path / "gaps.csv"
        path.write_bytes(content)
        before = gap_list_state()
        try:
            call_command(
                "import_gap_list",
                str(path),
                organization="org-a",
                source="Payer",
                stdout=io.StringIO(),
                stderr=io.StringIO(),
            )
        except CommandError as error:
            assert str(error).startswith(f"{path}: ") and len(str(error)) > len(str(path)) + 3
            assert gap_list_state() == before, "a refused list writes nothing"
            return
        record = GapListImport.objects.latest("id")
        for problem in record.problems:
            assert problem["line"] >= 2 and problem["reason"]
        assert CareGap.objects.count() - before[1] <= record.counts["good"]

    rolled_back(check)


@PROPERTY
@given(content=gap_list_files())
def test_admin_gap_list_upload(client, supervisor_a, listed_patient, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(supervisor_a)

    def check():
        before = gap_list_state()
        response = client.post(
            reverse("admin:gaps_gaplistimport_add"),
            {
                "file": SimpleUploadedFile("gaps.csv", content),
                "organization": listed_patient.organization_id,
                "source_name": "Payer",
                "source_kind": "payer_list",
            },
        )
        if response.status_code == 200:  # refused: the form says why, nothing is stored
            assert response.context["form"].errors["file"]
            assert gap_list_state() == before
            return
        assert response.status_code == 302
        record = GapListImport.objects.latest("id")
        preview = reverse("admin:gaps_gaplistimport_preview", args=[record.pk])
        assert client.get(preview).status_code == 200
        assert client.post(preview).status_code == 302
        record.refresh_from_db()
        assert record.status in (GapListImport.Status.APPLIED, GapListImport.Status.DUPLICATE)

    rolled_back(check)
