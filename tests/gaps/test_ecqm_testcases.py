"""Every official eCQM test case through import_fhir -> evaluate_measures -> export_gaps.

All 176 MP2025 cases (CMS130, CMS125, CMS165) go into one organization (patient ids are
unique across the deck and every record is keyed per patient), are evaluated once and exported
once; each expected.csv row is then compared on IP, DENOM, DENEX, NUMER and the gap status.
"""

import csv
import io
from collections import Counter

import pytest
from django.core.management import call_command

from tests.gaps.conftest import TESTCASES, needs_shared

pytestmark = [needs_shared, pytest.mark.django_db]


def _expected() -> list[dict]:
    with open(TESTCASES / "expected.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_official_case_matches_expected_populations_and_status(valuesets_2024, capsys):
    expected = _expected()
    call_command("create_organization", "ecqm-cases", name="eCQM test cases", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "import_fhir",
        str(TESTCASES / "qicore-2024"),
        organization="ecqm-cases",
        no_progress=True,
        stdout=out,
    )
    assert "bundles ok 176, rejected 0" in out.getvalue()
    periods = {(row["period_start"], row["period_end"]) for row in expected}
    measures = sorted({row["cms"] for row in expected})
    rows = {}
    for start, end in periods:
        call_command(
            "evaluate_measures",
            organization="ecqm-cases",
            period=f"{start}:{end}",
            measures=measures,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        exported = io.StringIO()
        call_command(
            "export_gaps",
            organization="ecqm-cases",
            period=f"{start}:{end}",
            format="csv",
            stdout=exported,
        )
        for row in csv.DictReader(io.StringIO(exported.getvalue())):
            rows[(row["cms"], row["patient_id"])] = row

    matched, total, mismatches = Counter(), Counter(), []
    for case in expected:
        total[case["cms"]] += 1
        got = rows.get((case["cms"], case["patient_id"]))
        want = (case["IP"], case["DENOM"], case["DENEX"], case["NUMER"], case["expected_gap"])
        have = got and (got["ip"], got["denom"], got["denex"], got["numer"], got["status"])
        if have == want:
            matched[case["cms"]] += 1
        else:
            mismatches.append(f"{case['cms']} {case['test_name']}: want {want}, got {have}")
    with capsys.disabled():
        for cms in sorted(total):
            print(f"\n{cms}: {matched[cms]}/{total[cms]} official cases match", end="")
    assert not mismatches, "\n".join(mismatches)
    assert sum(total.values()) == 176
