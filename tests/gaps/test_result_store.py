"""Results written straight into the table read back exactly as they were computed."""

import datetime as dt
import json

import pytest

from gaps.models import EvaluationRun, MeasureResult
from gaps.results import _insert_new, _jsonb_order, _stored
from tests.gaps.factories import measure
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_inserted_results_read_back_as_written_whatever_their_evidence_holds(org_a, system_user):
    today = dt.date.today()
    period = (dt.date(today.year, 1, 1), dt.date(today.year, 12, 31))
    run = EvaluationRun.objects.create(
        organization=org_a,
        actor=system_user,
        period_start=period[0],
        period_end=period[1],
        status="running",
    )
    version = measure("CMS130", "MP2026")
    tricky = [
        {"criterion": "numerator", "resource": 'Observation/a\\b"c', "date": "x\ty\nz\r"},
        {"criterion": "exclusion", "resource": "Condition/éü\\\\N", "date": ""},
    ]
    # As _EvidenceText spells it: keys in jsonb's order, so the stored text compares equal.
    evidence = json.dumps(
        [{key: item[key] for key in sorted(item, key=_jsonb_order)} for item in tricky],
        ensure_ascii=False,
    )
    patients = [PatientFactory(organization=org_a) for _ in range(3)]
    rows = [
        (version.pk, patients[0].pk, True, True, False, True, "closed", "closed-gap", evidence),
        (version.pk, patients[1].pk, True, True, False, False, "open", "open-gap", "[]"),
        (
            version.pk,
            patients[2].pk,
            False,
            False,
            False,
            False,
            "not-applicable",
            "not-applicable",
            "[]",
        ),
    ]

    assert _insert_new(rows, run) is True

    stored = _stored(org_a.pk, [version.pk], *period, None)
    assert stored == {(row[0], row[1]): row[2:] for row in rows}
    first = MeasureResult.objects.get(patient=patients[0])
    assert first.evidence == tricky
    assert (first.organization_id, first.evaluation_run_id, first.period_end) == (
        org_a.pk,
        run.pk,
        period[1],
    )

    # Inserting one of them again collides: nothing more is written.
    assert _insert_new(rows[:1], run) is False
    assert MeasureResult.objects.filter(organization=org_a).count() == 3
