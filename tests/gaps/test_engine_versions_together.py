"""Measure versions evaluated together (one load per measurement year, patient masks built as
the records load, answers shared between versions through the patient's memo, one shared
"not in the IP" result per patient) give each version exactly what it gets evaluated alone
(its own load, masks computed from the patient's records).

The official eCQM deck, every measure, with the 2025 and the 2026 versions.
"""

import datetime as dt
import io

import pytest
from django.core.management import call_command

from gaps.engine import evaluate, evaluate_many
from gaps.measures import MEASURE_CODES, pick_version
from patients.models import Organization
from tests.gaps.conftest import TESTCASES, needs_shared

pytestmark = [needs_shared, pytest.mark.django_db]


def _flat(evaluation) -> dict:
    return {
        r.patient_id: (
            r.ip,
            r.denom,
            r.denex,
            r.numer,
            r.status(evaluation.definition.inverse),
            [e.as_json() for e in r.evidence],
        )
        for r in evaluation.results
    }


@pytest.mark.parametrize("year", [2025, 2026])
def test_versions_evaluated_together_get_what_each_gets_alone(valuesets_2024, year):
    call_command("create_organization", "deck", name="deck", stdout=io.StringIO())
    call_command(
        "import_fhir",
        str(TESTCASES / "qicore-2024"),
        organization="deck",
        no_progress=True,
        stdout=io.StringIO(),
    )
    organization = Organization.objects.get(slug="deck")
    period = (dt.date(year, 1, 1), dt.date(year, 12, 31))
    definitions = [pick_version(cms, year)[0] for cms in MEASURE_CODES]

    together = evaluate_many(organization, definitions, *period)

    statuses = set()
    for definition, evaluation in zip(definitions, together, strict=True):
        assert evaluation.definition is definition
        alone = _flat(evaluate(organization, definition, *period))
        assert _flat(evaluation) == alone, definition.key
        assert len(alone) == 176
        statuses |= {row[4] for row in alone.values()}
    # Patients inside and outside the IP, in the numerator or excluded (none of the deck's
    # patients closes a 2026 gap: its dates are 2025's).
    assert statuses >= {"open", "excluded", "not-applicable"}
