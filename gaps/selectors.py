"""Scoped reads of measure results, evaluation runs and import runs (organization grants)."""

from collections.abc import Iterable
from functools import reduce
from operator import or_

from django.db.models import Exists, OuterRef, Q, QuerySet

from gaps.models import (
    CareGap,
    EvaluationRun,
    GapEvidence,
    GapListImport,
    Measure,
    MeasureResult,
    ValueSet,
)
from patients.clinical import ImportRun
from patients.selectors import granted_organization_ids, organizations_for


def measure_results_for(user) -> QuerySet[MeasureResult]:
    return MeasureResult.objects.filter(
        organization__in=organizations_for(user).values("pk")
    ).select_related("patient", "measure", "organization")


def engine_results(gaps: Iterable[CareGap]) -> dict[int, MeasureResult]:
    """Gap id -> the engine's latest result for it (same patient, measure and period), one
    query for all of them. The caller has already scoped the gaps."""
    gaps = list(gaps)
    if not gaps:
        return {}
    keys = [
        Q(
            patient_id=gap.patient_id,
            measure__cms=gap.measure_code,
            period_start=gap.period_start,
            period_end=gap.period_end,
        )
        for gap in gaps
    ]
    latest = {}
    # Oldest first, so the latest evaluation of a key (another version of the measure, run
    # with --measure-version) is the one kept.
    for result in (
        MeasureResult.objects.filter(reduce(or_, keys))
        .select_related("measure")
        .order_by("evaluated_at", "id")
    ):
        latest[(result.patient_id, result.measure.cms, result.period_start, result.period_end)] = (
            result
        )
    found = {}
    for gap in gaps:
        key = (gap.patient_id, gap.measure_code, gap.period_start, gap.period_end)
        if key in latest:
            found[gap.pk] = latest[key]
    return found


def gap_has_result(**result_filter) -> Exists:
    """For a CareGap queryset: the gap has an engine result (same patient, measure, period)
    matching `result_filter`."""
    return Exists(
        MeasureResult.objects.filter(
            patient_id=OuterRef("patient_id"),
            measure__cms=OuterRef("measure_code"),
            period_start=OuterRef("period_start"),
            period_end=OuterRef("period_end"),
            **result_filter,
        )
    )


def evaluation_runs_for(user) -> QuerySet[EvaluationRun]:
    return EvaluationRun.objects.filter(
        organization__in=organizations_for(user).values("pk")
    ).select_related("organization", "actor")


def import_runs_for(user) -> QuerySet[ImportRun]:
    return ImportRun.objects.filter(
        organization__in=organizations_for(user).values("pk")
    ).select_related("organization", "actor")


def value_sets_for(user) -> QuerySet[ValueSet]:
    # Reference data shared by every client: visible to anyone whose role may view it.
    if not user.is_authenticated or not user.is_active:
        return ValueSet.objects.none()
    return ValueSet.objects.select_related("loaded_by")


def measures_for(user) -> QuerySet[Measure]:
    if not user.is_authenticated or not user.is_active:
        return Measure.objects.none()
    return Measure.objects.all()


def care_gaps_for(user) -> QuerySet[CareGap]:
    """Gaps of the user's organizations, joined with what a worklist row shows."""
    return CareGap.objects.filter(organization__in=granted_organization_ids(user)).select_related(
        "patient", "measure", "owner", "organization"
    )


def gap_evidence_for(user) -> QuerySet[GapEvidence]:
    return GapEvidence.objects.filter(
        organization__in=organizations_for(user).values("pk")
    ).select_related("gap", "added_by")


def gap_list_imports_for(user) -> QuerySet[GapListImport]:
    return (
        GapListImport.objects.filter(organization__in=organizations_for(user).values("pk"))
        .select_related("organization", "uploaded_by")
        .defer("content")
    )
