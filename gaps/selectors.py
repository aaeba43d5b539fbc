"""Scoped reads of measure results, evaluation runs and import runs (organization grants)."""

from django.db.models import QuerySet

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
