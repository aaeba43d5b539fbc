"""Evaluate measures for an organization and store the results.

State: a MeasureResult per (patient, measure version, period) is created on the first
evaluation and overwritten by later ones (derived data, see gaps.models). Every evaluation is
recorded as an EvaluationRun (who, when, which measures, counts, warnings), and its results flow
into the care gaps agents work (gaps.sync).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import bulk_create_untracked, bulk_update_untracked
from gaps.engine import MeasureEvaluation, evaluate_many
from gaps.measures import MEASURE_CODES, MEASURES, UnknownMeasure, pick_version
from gaps.models import EvaluationRun, Measure, MeasureResult
from gaps.sync import sync_gaps_from_results
from patients.models import Organization

DEQM_STATUS = {
    "open": MeasureResult.GapStatus.OPEN,
    "closed": MeasureResult.GapStatus.CLOSED,
    "not-applicable": MeasureResult.GapStatus.NOT_APPLICABLE,
}


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    try:
        start_text, end_text = text.split(":")
        start, end = dt.date.fromisoformat(start_text), dt.date.fromisoformat(end_text)
    except ValueError:
        raise DomainError(
            f"--period {text!r}: expected START:END, e.g. 2025-01-01:2025-12-31"
        ) from None
    if end < start:
        raise DomainError(f"--period {text!r}: the end is before the start")
    return start, end


def sync_catalogue() -> dict[tuple[str, str], Measure]:
    """Mirror gaps/measures into Measure rows (idempotent)."""
    rows = {}
    for definition in MEASURES:
        measure, _ = Measure.objects.update_or_create(
            cms=definition.cms,
            version=definition.version,
            defaults={
                "title": definition.title,
                "inverse": definition.inverse,
                "first_year": definition.first_year,
                "description": definition.description,
            },
        )
        rows[definition.key] = measure
    return rows


def gap_status(status: str, period_end: dt.date, today: dt.date) -> str:
    if status == "excluded":
        # DEQM has no "excluded"; which code clients want is a setting (measures.md 4).
        return settings.CAREHUB_DEQM_EXCLUDED_AS
    if status == "open" and today < period_end:
        return MeasureResult.GapStatus.PROSPECTIVE  # still time to close it in the period
    return DEQM_STATUS[status]


@dataclass
class EvaluationSummary:
    run: EvaluationRun
    evaluations: list[MeasureEvaluation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def evaluate_measures(
    organization: Organization,
    *,
    period_start: dt.date,
    period_end: dt.date,
    actor,
    measures: list[str] | None = None,
    version: str | None = None,
) -> EvaluationSummary:
    if actor is None:
        raise ValueError("An evaluation needs an acting user (the system user for automation)")
    codes = measures or list(MEASURE_CODES)
    definitions, warnings = [], []
    for cms in codes:
        try:
            definition, warning = pick_version(cms.upper(), period_end.year, version)
        except UnknownMeasure as error:
            raise DomainError(str(error)) from None
        definitions.append(definition)
        if warning:
            warnings.append(warning)
    catalogue = sync_catalogue()
    run = EvaluationRun.objects.create(
        organization=organization,
        actor=actor,
        period_start=period_start,
        period_end=period_end,
        measures=[f"{d.cms} {d.version}" for d in definitions],
    )
    summary = EvaluationSummary(run)
    today = timezone.now().date()
    counts = {}
    evaluations = evaluate_many(organization, definitions, period_start, period_end)
    for definition, evaluation in zip(definitions, evaluations, strict=True):
        needed = definition.value_set_keys()
        for oid in evaluation.panel.missing_value_sets:
            if oid in needed:
                warnings.append(
                    f"{definition.cms} {definition.version}: value set {oid} is not loaded "
                    "(load_valuesets); criteria using it never match"
                )
        warnings.extend(
            f"{definition.cms} {definition.version}: {w}" for w in evaluation.panel.warnings
        )
        measure = catalogue[definition.key]
        tally = _store(evaluation, measure, organization, run, period_start, period_end, today)
        synced = sync_gaps_from_results(
            organization, measure, period_start, period_end, actor=actor
        )
        tally["gaps"] = {
            "opened": synced.opened,
            "closed": synced.closed,
            "excluded": synced.excluded,
            "to_review": synced.to_review,
        }
        counts[f"{definition.cms} {definition.version}"] = tally
        summary.evaluations.append(evaluation)
    run.counts = counts
    warnings = list(dict.fromkeys(warnings))
    run.warnings = "\n".join(warnings)
    run.finished_at = timezone.now()
    run.save(update_fields=["counts", "warnings", "finished_at"])
    summary.warnings = warnings
    return summary


@transaction.atomic
def _store(evaluation, measure, organization, run, period_start, period_end, today) -> dict:
    inverse = evaluation.definition.inverse
    existing = {
        r.patient_id: r
        for r in MeasureResult.objects.filter(
            organization=organization,
            measure=measure,
            period_start=period_start,
            period_end=period_end,
        )
    }
    new, changed = [], []
    tally = {"open": 0, "closed": 0, "excluded": 0, "not-applicable": 0}
    fields = ["ip", "denom", "denex", "numer", "status", "gap_status", "evidence"]
    for result in evaluation.results:
        status = result.status(inverse)
        tally[status] += 1
        values = {
            "ip": result.ip,
            "denom": result.denom,
            "denex": result.denex,
            "numer": result.numer,
            "status": status,
            "gap_status": gap_status(status, period_end, today),
            "evidence": [e.as_json() for e in result.evidence],
        }
        row = existing.get(result.patient_id)
        if row is None:
            new.append(
                MeasureResult(
                    organization=organization,
                    patient_id=result.patient_id,
                    measure=measure,
                    period_start=period_start,
                    period_end=period_end,
                    evaluation_run=run,
                    **values,
                )
            )
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.evaluation_run = run
            changed.append(row)
    bulk_create_untracked(new)
    # evaluated_at is auto_now, which bulk_update does not touch by itself.
    now = timezone.now()
    for row in changed:
        row.evaluated_at = now
    bulk_update_untracked(changed, [*fields, "evaluation_run", "evaluated_at"])
    return tally
