"""Every Da Vinci DEQM example file imports without error."""

import pytest

from patients.clinical import ImportRun
from patients.fhir.importer import import_paths
from tests.gaps.conftest import ECQM

DEQM = ECQM / "deqm-examples"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not DEQM.is_dir(), reason=f"DEQM examples not found at {DEQM}"),
]


def test_every_deqm_example_imports_without_error(org_a, system_user):
    run = import_paths([DEQM], organization=org_a, actor=system_user)
    assert run.status == ImportRun.Status.SUCCEEDED, run.report
    assert run.counts["bundles_ok"] == len(list(DEQM.rglob("*.json")))
    assert run.counts["patients_created"] >= 2
