"""export_gaps: the CSV columns exactly, and DEQM documents that parse as strict R4."""

import csv
import io
import json

import pytest
from django.core.management import call_command

from gaps.export import CSV_COLUMNS, GAP_STATUS_URL
from gaps.measures import oids
from tests.gaps.conftest import BundleBuilder, evaluate_one, needs_shared

pytestmark = [needs_shared, pytest.mark.django_db]


@pytest.fixture
def evaluated(org_a, system_user, valuesets_2024):
    closed = BundleBuilder(birth_date="1960-01-01")
    closed.encounter(oids.OFFICE_VISIT, "2025-03-03T09:00:00Z")
    closed.lab(oids.FOBT, "2025-04-01", value={"valueString": "negative"})
    evaluate_one(closed, org_a, system_user, "CMS130", 2025)
    open_gap = BundleBuilder(birth_date="1961-01-01")
    open_gap.encounter(oids.OFFICE_VISIT, "2025-03-03T09:00:00Z")
    evaluate_one(open_gap, org_a, system_user, "CMS130", 2025)
    return closed.patient_id, open_gap.patient_id


def export(fmt):
    out = io.StringIO()
    call_command(
        "export_gaps", organization="org-a", period="2025-01-01:2025-12-31", format=fmt, stdout=out
    )
    return out.getvalue()


def test_csv_has_exactly_the_agreed_columns_and_the_evidence(evaluated):
    closed_id, open_id = evaluated
    rows = list(csv.reader(io.StringIO(export("csv"))))
    assert (
        rows[0]
        == CSV_COLUMNS
        == [
            "patient_id",
            "mrn",
            "cms",
            "measure_version",
            "status",
            "ip",
            "denom",
            "denex",
            "numer",
            "evidence",
        ]
    )
    by_patient = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert by_patient[closed_id]["status"] == "closed" and by_patient[closed_id]["numer"] == "1"
    assert (
        "numerator: FOBT Observation/Observation-2 2025-04-01" in by_patient[closed_id]["evidence"]
    )
    assert by_patient[open_id]["status"] == "open"
    assert (by_patient[open_id]["ip"], by_patient[open_id]["numer"]) == ("1", "0")


def test_deqm_export_is_one_document_per_patient_and_parses_as_strict_r4(evaluated):
    from fhirclient.models.bundle import Bundle
    from fhirclient.models.parameters import Parameters

    document = json.loads(export("deqm"))
    Parameters(document, strict=True)
    bundles = [p["resource"] for p in document["parameter"]]
    assert len(bundles) == 2
    statuses = set()
    for raw in bundles:
        Bundle(raw, strict=True)
        assert raw["type"] == "document"
        resources = [e["resource"] for e in raw["entry"]]
        composition = resources[0]
        assert composition["resourceType"] == "Composition"
        assert composition["type"]["coding"][0]["code"] == "96315-7"
        by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}
        for section in composition["section"]:
            report = by_ref[section["focus"]["reference"]]
            issue = by_ref[section["entry"][0]["reference"]]
            assert report["type"] == "individual"
            assert issue["code"]["coding"][0]["code"] == "CAREGAP"
            assert issue["evidence"][0]["detail"][0]["reference"] == section["focus"]["reference"]
            (extension,) = issue["modifierExtension"]
            assert extension["url"] == GAP_STATUS_URL
            statuses.add(extension["valueCodeableConcept"]["coding"][0]["code"])
    assert statuses == {"open-gap", "closed-gap"}


def test_deqm_export_imports_back_without_error(evaluated, org_b, system_user):
    from patients.clinical import ImportRun
    from patients.fhir.importer import import_documents

    run = import_documents(
        [("export.json", export("deqm").encode())], organization=org_b, actor=system_user
    )
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
