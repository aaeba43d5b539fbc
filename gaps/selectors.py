"""Scoped reads of measure results, evaluation runs and import runs (organization grants)."""

from collections.abc import Iterable

from django.db.models import Exists, OuterRef, QuerySet

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
    """Gap id -> the engine's latest result for it (same patient, measure and period): the
    results of the gaps' patients, a query per 500 patients. The caller has already scoped the
    gaps."""
    by_key: dict[tuple, list[int]] = {}
    for gap in gaps:
        key = (gap.patient_id, gap.measure_code, gap.period_start, gap.period_end)
        by_key.setdefault(key, []).append(gap.pk)
    patients = sorted({key[0] for key in by_key})
    found = {}
    for start in range(0, len(patients), 500):
        # Oldest first, so the latest evaluation of a key (another version of the measure,
        # run with --measure-version) is the one kept.
        results = (
            MeasureResult.objects.filter(
                patient_id__in=patients[start : start + 500],
                measure__cms__in={key[1] for key in by_key},
            )
            .select_related("measure")
            .order_by("evaluated_at", "id")
        )
        for result in results:
            key = (result.patient_id, result.measure.cms, result.period_start, result.period_end)
            for gap_id in by_key.get(key, ()):
                found[gap_id] = result
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
