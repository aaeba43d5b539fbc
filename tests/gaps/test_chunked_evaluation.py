"""Evaluation in patient chunks gives exactly the results of one evaluation of the whole panel,
and the set-based store writes only what changed.

The official eCQM deck (176 patients with every edge case the measure authors thought of) is
imported into two organizations; one is evaluated in one chunk, the other in chunks of 7
patients. Results, gap states and their history must be the same, patient by patient.
"""

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command

from carehub.history import get_system_user
from gaps.care_gaps import CareGap, GapSource
from gaps.engine import evaluate_chunks, evaluate_many
from gaps.measures import pick_version
from gaps.models import EvaluationRun, MeasureResult
from gaps.selectors import engine_results
from gaps.services import evaluate_measures
from patients.models import Organization
from tests.gaps.conftest import TESTCASES, needs_shared

pytestmark = [needs_shared, pytest.mark.django_db]

PERIOD = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
MEASURES = ["CMS130", "CMS125", "CMS165"]


def _deck(slug: str) -> Organization:
    call_command("create_organization", slug, name=slug, stdout=io.StringIO())
    call_command(
        "import_fhir",
        str(TESTCASES / "qicore-2024"),
        organization=slug,
        no_progress=True,
        stdout=io.StringIO(),
    )
    return Organization.objects.get(slug=slug)


def _results(organization) -> dict:
    return {
        (row["patient__source_id"], row["measure__cms"]): row
        for row in MeasureResult.objects.filter(organization=organization).values(
            "patient__source_id",
            "measure__cms",
            "ip",
            "denom",
            "denex",
            "numer",
            "status",
            "gap_status",
            "evidence",
        )
    }


RUN = re.compile(r" \(evaluation run #\d+\)$")


def _gaps(organization) -> dict:
    gaps = {}
    found = list(CareGap.objects.filter(organization=organization).select_related("patient"))
    results = engine_results(found)
    for gap in found:
        gaps[(gap.patient.source_id, gap.measure_code)] = (
            gap.state,
            gap.primary_source,
            gap.next_step,
            results[gap.pk].status,
            [
                # Each organization has its own run; the reasons name it.
                (h.history_type, RUN.sub("", h.history_change_reason))
                for h in gap.history.order_by("history_id")
            ],
            list(gap.sources.values_list("kind", "name")),
        )
    return gaps


def test_chunked_evaluation_stores_exactly_the_one_shot_results(valuesets_2024):
    actor = get_system_user()
    whole, chunked = _deck("deck-whole"), _deck("deck-chunked")

    evaluate_measures(
        whole,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        actor=actor,
        measures=MEASURES,
        chunk_size=1_000_000,
    )
    evaluate_measures(
        chunked,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        actor=actor,
        measures=MEASURES,
        chunk_size=7,
    )

    one_shot, in_chunks = _results(whole), _results(chunked)
    assert len(one_shot) == 176 * len(MEASURES)
    assert in_chunks == one_shot
    assert {row["status"] for row in one_shot.values()} >= {"open", "closed", "excluded"}
    assert _gaps(chunked) == _gaps(whole)
    assert CareGap.objects.filter(organization=whole).exists()
    runs = EvaluationRun.objects.filter(organization__in=[whole, chunked])
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}
    whole_run, chunked_run = (runs.get(organization=o) for o in (whole, chunked))
    assert chunked_run.counts == whole_run.counts


def test_the_engine_in_chunks_gives_every_patient_the_one_shot_populations(valuesets_2024):
    organization = _deck("deck-engine")
    definitions = [pick_version(cms, 2025)[0] for cms in MEASURES]

    def flat(evaluations):
        return {
            (definition.cms, r.patient_id): (
                r.ip,
                r.denom,
                r.denex,
                r.numer,
                [e.as_json() for e in r.evidence],
            )
            for definition, evaluation in zip(definitions, evaluations, strict=True)
            for r in evaluation.results
        }

    one_shot = flat(evaluate_many(organization, definitions, *PERIOD))
    chunked, ranges = {}, []
    for patient_range, evaluations in evaluate_chunks(
        organization, definitions, *PERIOD, chunk_size=10
    ):
        ranges.append(patient_range)
        part = flat(evaluations)
        assert all(patient_range[0] <= pid <= patient_range[1] for _, pid in part)
        assert not part.keys() & chunked.keys(), "a patient evaluated in two chunks"
        chunked.update(part)
    assert len(ranges) == 18  # 176 patients in chunks of 10
    assert chunked == one_shot
    assert len(one_shot) == 176 * len(MEASURES)


def _evaluate_cms130(organization) -> EvaluationRun:
    return evaluate_measures(
        organization,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        actor=get_system_user(),
        measures=["CMS130"],
        chunk_size=50,
    ).run


def test_re_evaluating_unchanged_data_writes_nothing_and_a_change_is_rewritten(valuesets_2024):
    organization = _deck("deck-rerun")

    first = _evaluate_cms130(organization)
    assert first.counts["CMS130 MP2025"]["stored"] == 176
    gaps_before = CareGap.objects.filter(organization=organization).count()
    history_before = CareGap.history.filter(organization_id=organization.pk).count()
    sources_before = GapSource.objects.filter(gap__organization=organization).count()
    assert gaps_before > 0 and history_before == gaps_before == sources_before

    second = _evaluate_cms130(organization)
    assert second.counts["CMS130 MP2025"]["stored"] == 0
    assert second.counts["CMS130 MP2025"]["gaps"] == {
        "opened": 0,
        "closed": 0,
        "excluded": 0,
        "to_review": 0,
    }
    assert CareGap.objects.filter(organization=organization).count() == gaps_before
    assert CareGap.history.filter(organization_id=organization.pk).count() == history_before
    # Results keep the run that last changed them.
    assert set(
        MeasureResult.objects.filter(organization=organization).values_list(
            "evaluation_run", flat=True
        )
    ) == {first.pk}

    # A stored result that no longer matches what the engine finds is rewritten, alone.
    stale = MeasureResult.objects.filter(organization=organization, status="open").first()
    MeasureResult.objects.filter(pk=stale.pk).update(status="closed", numer=True)
    third = _evaluate_cms130(organization)
    assert third.counts["CMS130 MP2025"]["stored"] == 1
    stale.refresh_from_db()
    assert (stale.status, stale.numer, stale.evaluation_run_id) == ("open", False, third.pk)


def test_new_results_are_inserted_and_ones_stored_since_the_read_go_through_the_upsert(
    valuesets_2024, monkeypatch
):
    organization = _deck("deck-insert")

    _evaluate_cms130(organization)
    stored = MeasureResult.objects.filter(organization=organization)
    expected = _results(organization)
    lost = list(stored.order_by("patient_id")[:3])
    lost_patients = [result.patient_id for result in lost]
    MeasureResult.objects.filter(pk__in=[result.pk for result in lost]).delete()

    # Results missing from the table are new: written again, and only they.
    refill = _evaluate_cms130(organization)
    assert refill.counts["CMS130 MP2025"]["stored"] == 3
    assert set(stored.filter(evaluation_run=refill).values_list("patient_id", flat=True)) == set(
        lost_patients
    )
    assert _results(organization) == expected

    # As if another evaluation stored the chunk between the read and the write: every
    # result looks new, the inserts collide, and the upsert writes what differs (nothing).
    monkeypatch.setattr("gaps.results._stored", lambda *args: {})
    collided = _evaluate_cms130(organization)
    assert collided.status == EvaluationRun.Status.SUCCEEDED
    assert collided.counts["CMS130 MP2025"]["stored"] == 0
    assert stored.count() == 176
    assert _results(organization) == expected


def test_gaps_opened_set_based_carry_the_system_user_and_the_reason(valuesets_2024):
    actor = get_system_user()
    organization = _deck("deck-history")
    evaluate_measures(
        organization,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        actor=actor,
        measures=["CMS125"],
        chunk_size=20,
    )
    gap = CareGap.objects.filter(organization=organization).first()
    (created,) = gap.history.all()
    assert created.history_type == "+"
    assert created.history_user == actor
    run = EvaluationRun.objects.get(organization=organization)
    assert created.history_change_reason == (
        f"Opened by the engine: the service is due (evaluation run #{run.pk})"
    )
    assert created.state == "identified"
    assert engine_results([gap])[gap.pk].status == "open"
    (source,) = gap.sources.all()
    assert (source.kind, source.history.get().history_user) == ("engine", actor)
