"""Engine results flow into care gaps without losing the workflow, and the 14-day rule."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule
from django_q.tasks import async_task, result

from carehub.history import save_with_history
from gaps.care_gaps import CareGap, GapEvidence, GapSource, GapState, SourceKind
from gaps.measures import oids
from gaps.models import MeasureResult
from gaps.schedule import STALE_FUNC, STALE_NAME, ensure_nightly_schedule
from gaps.selectors import engine_results
from gaps.services import evaluate_measures
from gaps.sync import flag_stale_completions
from gaps.workflow import (
    mark_completed,
    mark_scheduled,
    record_outreach_started,
    start_review,
    validate_gap,
)
from patients.fhir.importer import import_documents
from patients.models import Patient
from tests.gaps.conftest import BundleBuilder, needs_shared
from tests.gaps.factories import CareGapFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def _patient_due_for_screening() -> BundleBuilder:
    builder = BundleBuilder(birth_date="1960-01-01")
    builder.encounter(oids.OFFICE_VISIT, "2025-03-03T09:00:00Z")
    return builder


def _import(organization, actor, *builders):
    run = import_documents(
        [(f"b{i}", b.raw()) for i, b in enumerate(builders)], organization=organization, actor=actor
    )
    assert run.status == "succeeded", run.report


def _evaluate(organization, actor):
    evaluate_measures(
        organization,
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 12, 31),
        actor=actor,
        measures=["CMS130"],
    )


def _gap(builder) -> CareGap:
    return CareGap.objects.get(patient__source_id=builder.patient_id)


def _to_outreach(gap, agent):
    # The imported test patients carry no phone; outreach needs a channel the policy permits.
    gap.patient.phone = "+16175550100"
    gap.patient.save()
    start_review(gap, actor=agent)
    validate_gap(gap, actor=agent)
    record_outreach_started(gap, actor=agent, channel="phone")


@needs_shared
def test_re_running_the_engine_closes_the_right_gaps_and_keeps_the_rest(
    org_a, system_user, agent_a, valuesets_2024
):
    worked, booked, untouched, leaving = (_patient_due_for_screening() for _ in range(4))
    _import(org_a, system_user, worked, booked, untouched, leaving)
    _evaluate(org_a, system_user)

    assert CareGap.objects.count() == 4
    assert set(CareGap.objects.values_list("state", flat=True)) == {"identified"}
    assert set(CareGap.objects.values_list("primary_source", flat=True)) == {"engine"}
    _to_outreach(_gap(worked), agent_a)
    _to_outreach(_gap(booked), agent_a)
    mark_scheduled(_gap(booked), actor=agent_a, appointment_on=dt.date.today())
    _to_outreach(_gap(leaving), agent_a)
    booked_versions = _gap(booked).history.count()

    # New data: two screenings, a hospice stay, and a new patient due.
    worked.lab(oids.FOBT, "2025-05-02", value={"valueString": "negative"})
    untouched.lab(oids.FOBT, "2025-06-10", value={"valueString": "negative"})
    leaving.encounter(oids.HOSPICE_ENCOUNTER, "2025-07-01T09:00:00Z")
    newcomer = _patient_due_for_screening()
    _import(org_a, system_user, worked, untouched, leaving, newcomer)
    _evaluate(org_a, system_user)

    for builder in (worked, untouched):
        gap = _gap(builder)
        assert gap.state == GapState.CLOSED and gap.closed_by_engine
        evidence = gap.evidence.get()
        assert evidence.kind == GapEvidence.Kind.ENGINE_RESOURCE
        assert evidence.reference.startswith("Observation/")
        assert evidence.service_date in (dt.date(2025, 5, 2), dt.date(2025, 6, 10))
        latest = gap.history.latest("history_date")
        assert latest.history_user == system_user
        assert "Closed by the engine" in latest.history_change_reason
    assert _gap(worked).history.filter(state="outreach").exists()  # the workflow is kept
    gap = _gap(leaving)
    assert (gap.state, gap.not_a_gap_reason) == ("not_a_gap", "excluded")
    assert _gap(booked).state == GapState.SCHEDULED
    assert _gap(booked).history.count() == booked_versions
    assert _gap(newcomer).state == GapState.IDENTIFIED

    versions = sum(g.history.count() for g in CareGap.objects.all())
    _evaluate(org_a, system_user)
    assert sum(g.history.count() for g in CareGap.objects.all()) == versions


def _run(organization, actor):
    return evaluate_measures(
        organization,
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 12, 31),
        actor=actor,
        measures=["CMS130"],
    ).run


def _audit_rows() -> tuple[int, ...]:
    return (
        CareGap.history.count(),
        GapSource.history.count(),
        GapEvidence.history.count(),
        MeasureResult.objects.count(),
    )


@needs_shared
def test_an_unchanged_rerun_writes_nothing_and_a_change_moves_exactly_its_gap(
    org_a, system_user, valuesets_2024
):
    screened, waiting = _patient_due_for_screening(), _patient_due_for_screening()
    _import(org_a, system_user, screened, waiting)
    first = _run(org_a, system_user)
    assert first.counts["CMS130 MP2025"]["gaps"]["opened"] == 2
    before = _audit_rows()

    with CaptureQueriesContext(connection) as queries:
        second = _run(org_a, system_user)
    assert second.counts["CMS130 MP2025"]["stored"] == 0
    assert _audit_rows() == before
    written = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "WITH"))
        and "evaluationrun" not in q["sql"]
    ]
    assert written == []  # not even a write that changes nothing

    screened.lab(oids.FOBT, "2025-05-02", value={"valueString": "negative"})
    _import(org_a, system_user, screened)
    third = _run(org_a, system_user)
    assert third.counts["CMS130 MP2025"]["stored"] == 1
    assert third.counts["CMS130 MP2025"]["gaps"] == {
        "opened": 0,
        "closed": 1,
        "excluded": 0,
        "to_review": 0,
    }
    gaps_history, sources_history, evidence_history, results = _audit_rows()
    assert (gaps_history, sources_history, results) == (before[0] + 1, before[1], before[3])
    assert evidence_history == before[2] + 1
    gap = _gap(screened)
    latest = gap.history.latest("history_date")
    assert (latest.state, latest.history_type, latest.history_user) == ("closed", "~", system_user)
    assert latest.history_change_reason == (
        f"Closed by the engine: new clinical data meets the measure (evaluation run #{third.pk})"
    )
    evidence = gap.evidence.get()
    assert evidence.history.get().history_change_reason == (
        f"Evidence found by the engine (evaluation run #{third.pk})"
    )
    assert engine_results([gap])[gap.pk].evaluation_run_id == third.pk
    assert _gap(waiting).history.count() == 1  # opened, then left alone
    assert _gap(waiting).state == GapState.IDENTIFIED


@needs_shared
def test_listed_gaps_the_engine_finds_open_gain_one_engine_source_and_never_a_second(
    org_a, system_user, valuesets_2024
):
    listed, known = _patient_due_for_screening(), _patient_due_for_screening()
    # Too young for CMS130: the engine finds the measure not applicable, so it does not report
    # the gap the list did.
    too_young = BundleBuilder(birth_date="2000-01-01")
    too_young.encounter(oids.OFFICE_VISIT, "2025-03-03T09:00:00Z")
    _import(org_a, system_user, listed, known, too_young)
    for builder in (listed, known, too_young):
        gap = CareGapFactory(
            patient=Patient.objects.get(source_id=builder.patient_id),
            period_start=dt.date(2025, 1, 1),
            period_end=dt.date(2025, 12, 31),
            due_date=dt.date(2025, 12, 31),
            primary_source=SourceKind.PAYER_LIST,
        )
        save_with_history(
            GapSource(gap=gap, kind=SourceKind.PAYER_LIST, name="Blue Horizon MA", reported_at=NOW),
            actor=system_user,
            reason="Listed",
        )
    # `known` was reported by the engine before, under another name: it gains no second one.
    save_with_history(
        GapSource(gap=_gap(known), kind=SourceKind.ENGINE, name="engine 2024", reported_at=NOW),
        actor=system_user,
        reason="Reported by the engine",
    )

    run = _run(org_a, system_user)

    assert run.counts["CMS130 MP2025"]["gaps"]["opened"] == 0
    found = engine_results(_gap(b) for b in (listed, known, too_young))
    assert [found[_gap(b).pk].status for b in (listed, known, too_young)] == [
        "open",
        "open",
        "not-applicable",
    ]
    assert list(_gap(too_young).sources.values_list("kind", flat=True)) == ["payer_list"]
    assert sorted(_gap(listed).sources.values_list("kind", "name")) == [
        ("engine", "engine"),
        ("payer_list", "Blue Horizon MA"),
    ]
    assert sorted(_gap(known).sources.values_list("kind", "name")) == [
        ("engine", "engine 2024"),
        ("payer_list", "Blue Horizon MA"),
    ]
    added = _gap(listed).sources.get(kind=SourceKind.ENGINE).history.get()
    assert (added.history_type, added.history_user, added.history_change_reason) == (
        "+",
        system_user,
        f"Reported by the engine (evaluation run #{run.pk})",
    )


def test_completed_gaps_without_documentation_become_a_coordination_follow_up(
    patient_a, org_a, agent_a, system_user
):
    today = dt.date(2026, 11, 22)
    stale = CareGapFactory(patient=patient_a, state=GapState.SCHEDULED)
    mark_completed(stale, actor=agent_a, completed_on=dt.date(2026, 11, 7))
    recent = CareGapFactory(patient=patient_a, measure_code="CMS125", state=GapState.SCHEDULED)
    mark_completed(recent, actor=agent_a, completed_on=dt.date(2026, 11, 10))

    assert flag_stale_completions(today=today) == 1
    stale.refresh_from_db()
    recent.refresh_from_db()
    assert stale.needs_coordination and stale.coordination_due == dt.date(2026, 11, 24)
    assert stale.next_step == "coordination_follow_up"
    assert stale.history.latest("history_date").history_user == system_user
    assert not recent.needs_coordination
    assert flag_stale_completions(today=today) == 0  # flagged once


def test_the_14_day_rule_runs_daily_through_the_task_queue(patient_a, agent_a):
    ensure_nightly_schedule()
    assert Schedule.objects.get(name=STALE_NAME).func == STALE_FUNC
    gap = CareGapFactory(patient=patient_a, state=GapState.SCHEDULED)
    mark_completed(gap, actor=agent_a, completed_on=dt.date.today() - dt.timedelta(days=20))
    task_id = async_task(STALE_FUNC, sync=True)
    assert result(task_id) == 1
    gap.refresh_from_db()
    assert gap.needs_coordination
