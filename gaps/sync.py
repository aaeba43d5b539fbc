"""Engine results flow into care gaps, and the 14-day documentation rule.

After each evaluation, per measure, period and chunk of patients (set-based, a few queries per
measure; what to change is decided in SQL against the stored results, only gaps that change are
loaded):
- an open result with no gap opens one (identified, source: engine);
- a met numerator closes the gap from any state but closed, with the resource the engine found as
  evidence; pending outreach stops because the gap is no longer open;
- an excluded patient's gap becomes not_a_gap (reason: excluded), with the exclusion's record;
- a gap the engine had closed but whose numerator is no longer met goes to needs_review;
- everything else keeps its workflow state; every gap points at its latest result.
The system user acts; each change leaves a history row with the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from carehub import events
from carehub.history import (
    bulk_create_with_history,
    bulk_update_with_history,
    get_system_user,
    insert_select_with_history,
    update_from_with_history,
)
from gaps.care_gaps import (
    DOCUMENTATION_DAYS,
    OPEN_STATES,
    CareGap,
    GapEvidence,
    GapSource,
    GapState,
    NextStep,
    NotAGapReason,
    SourceKind,
)
from gaps.measures import MEASURE_WEIGHTS
from gaps.models import Measure, MeasureResult

COORDINATION_DAYS = 2
NOT_GIVEN = object()


@dataclass
class SyncCounts:
    opened: int = 0
    closed: int = 0
    excluded: int = 0
    to_review: int = 0
    linked: int = 0
    details: dict = field(default_factory=dict)


def _evidence_of(result: MeasureResult, criteria: str) -> list[dict]:
    return [e for e in result.evidence if e.get("criterion", "").startswith(criteria)]


def _engine_evidence(gap: CareGap, result: MeasureResult, actor, now, kind: str) -> GapEvidence:
    # An inverse measure (CMS122) closes when its numerator finds nothing: no record to cite, so
    # the result itself is the evidence.
    found = _evidence_of(result, kind)
    first = found[0] if found else {}
    service_date = None
    if first.get("date"):
        try:
            service_date = dt.date.fromisoformat(first["date"][:10])
        except ValueError:
            service_date = None
    return GapEvidence(
        organization_id=gap.organization_id,
        gap=gap,
        kind=GapEvidence.Kind.ENGINE_RESOURCE,
        service_date=service_date,
        reference=", ".join(e.get("resource", "") for e in found)[:300]
        or f"Measure result #{result.pk}",
        added_by=actor,
        added_at=now,
    )


def _sql_value(field, value):
    return field.get_db_prep_save(value, connection)


def _open_new_gaps(
    organization, measure: Measure, period_start, period_end, patient_range, *, actor, now, today
) -> list[int]:
    """One `INSERT … SELECT` opens a gap for every open result without one (history written
    set-based in the same transaction); a gap someone else opened meanwhile is left alone."""
    explicit = {
        "organization": "r.organization_id",
        "patient": "r.patient_id",
        "measure": "r.measure_id",
        "period_start": "r.period_start",
        "period_end": "r.period_end",
        "measure_result": "r.id",
        "measure_code": measure.cms,
        "primary_source": SourceKind.ENGINE,
        "state": GapState.IDENTIFIED,
        "state_changed_at": now,
        "next_step": NextStep.REVIEW_RECORDS,
        "next_step_due": today + dt.timedelta(days=2),
        "due_date": period_end,
        "measure_weight": MEASURE_WEIGHTS.get(measure.cms, 1),
        "created_at": now,
    }
    columns, select, params = [], [], []
    for model_field in CareGap._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(model_field.column)
        value = explicit.get(model_field.name, NOT_GIVEN)
        if isinstance(value, str) and value.startswith("r."):
            select.append(value)
            continue
        select.append("%s")
        params.append(
            _sql_value(model_field, model_field.get_default() if value is NOT_GIVEN else value)
        )
    results = MeasureResult._meta.db_table
    gaps = CareGap._meta.db_table
    sql = (
        f"SELECT {', '.join(select)} FROM {results} r WHERE r.organization_id = %s "  # noqa: S608
        "AND r.measure_id = %s AND r.period_start = %s AND r.period_end = %s AND r.status = %s"
        + (" AND r.patient_id BETWEEN %s AND %s" if patient_range else "")
        + f" AND NOT EXISTS (SELECT 1 FROM {gaps} g WHERE g.patient_id = r.patient_id "  # noqa: S608
        "AND g.measure_code = %s AND g.period_start = r.period_start "
        "AND g.period_end = r.period_end)"
    )
    params += [
        organization.pk,
        measure.pk,
        connection.ops.adapt_datefield_value(period_start),
        connection.ops.adapt_datefield_value(period_end),
        MeasureResult.Status.OPEN,
        *(patient_range or ()),
        measure.cms,
    ]
    created = insert_select_with_history(
        CareGap,
        columns,
        sql,
        params,
        actor=actor,
        reason="Opened by the engine: the service is due",
        skip_conflicts=True,
    )
    for start in range(0, len(created), 5000):
        batch = created[start : start + 5000]
        source = {
            "gap": "g.id",
            "kind": SourceKind.ENGINE,
            "name": "engine",
            "due_date": period_end,
            "reported_at": now,
        }
        columns, select, source_params = [], [], []
        for model_field in GapSource._meta.concrete_fields:
            if model_field.primary_key:
                continue
            columns.append(model_field.column)
            value = source.get(model_field.name, NOT_GIVEN)
            if value == "g.id":
                select.append(value)
                continue
            select.append("%s")
            source_params.append(
                _sql_value(model_field, model_field.get_default() if value is NOT_GIVEN else value)
            )
        insert_select_with_history(
            GapSource,
            columns,
            f"SELECT {', '.join(select)} FROM {gaps} g "  # noqa: S608
            f"WHERE g.id IN ({', '.join(['%s'] * len(batch))})",
            [*source_params, *batch],
            actor=actor,
            reason="Reported by the engine",
        )
    return created


def _join_results(organization, measure: Measure, period_start, period_end, patient_range):
    """SQL joining a measure's results (r) to their gaps (the table itself), and its params."""
    gaps = CareGap._meta.db_table
    sql = (
        f"r.patient_id = {gaps}.patient_id AND {gaps}.measure_code = %s "
        f"AND {gaps}.period_start = r.period_start AND {gaps}.period_end = r.period_end "
        "AND r.organization_id = %s AND r.measure_id = %s AND r.period_start = %s "
        "AND r.period_end = %s" + (" AND r.patient_id BETWEEN %s AND %s" if patient_range else "")
    )
    params = [
        measure.cms,
        organization.pk,
        measure.pk,
        connection.ops.adapt_datefield_value(period_start),
        connection.ops.adapt_datefield_value(period_end),
        *(patient_range or ()),
    ]
    return sql, params


def _state_changes() -> tuple[str, list]:
    """SQL true when a result moves its gap's workflow state (the rules of the docstring)."""
    gaps = CareGap._meta.db_table
    open_states = sorted(OPEN_STATES)
    sql = (
        f"((r.status = %s AND {gaps}.state <> %s)"
        f" OR (r.status = %s AND {gaps}.state IN ({', '.join(['%s'] * len(open_states))}))"
        f" OR (r.status = %s AND {gaps}.state = %s AND {gaps}.closed_by_engine))"
    )
    params = [
        MeasureResult.Status.CLOSED,
        GapState.CLOSED,
        MeasureResult.Status.EXCLUDED,
        *open_states,
        MeasureResult.Status.OPEN,
        GapState.CLOSED,
    ]
    return sql, params


def _gaps_to_change(organization, measure: Measure, period_start, period_end, patient_range):
    """(result id, gap id) of the gaps whose state the results change: the comparison runs in
    SQL, so only the few gaps that move are loaded."""
    gaps = CareGap._meta.db_table
    join, join_params = _join_results(
        organization, measure, period_start, period_end, patient_range
    )
    changes, change_params = _state_changes()
    sql = (
        f"SELECT r.id, {gaps}.id FROM {MeasureResult._meta.db_table} r, {gaps} "  # noqa: S608
        f"WHERE {join} AND {changes}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*join_params, *change_params])
        return cursor.fetchall()


def _link_to_results(
    organization, measure: Measure, period_start, period_end, patient_range, *, actor, now
) -> list[int]:
    """Point every other gap at its latest result in one `UPDATE … FROM` (history set-based);
    a list-reported gap the engine now evaluates gains the engine as a source."""
    gaps = CareGap._meta.db_table
    join, join_params = _join_results(
        organization, measure, period_start, period_end, patient_range
    )
    changes, change_params = _state_changes()
    linked = update_from_with_history(
        CareGap,
        assignments="measure_result_id = r.id",
        from_sql=f"{MeasureResult._meta.db_table} r",
        where=f"{join} AND ({gaps}.measure_result_id IS NULL OR {gaps}.measure_result_id <> r.id)"
        f" AND NOT {changes}",
        params=[*join_params, *change_params],
        actor=actor,
        reason="Linked to the latest evaluation",
    )
    sources = GapSource._meta.db_table
    source_values = {"gap": "g.id", "kind": SourceKind.ENGINE, "name": "engine",
                     "due_date": period_end, "reported_at": now}  # fmt: skip
    columns, select, params = [], [], []
    for model_field in GapSource._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(model_field.column)
        value = source_values.get(model_field.name, NOT_GIVEN)
        if value == "g.id":
            select.append(value)
            continue
        select.append("%s")
        params.append(
            _sql_value(model_field, model_field.get_default() if value is NOT_GIVEN else value)
        )
    for start in range(0, len(linked), 5000):
        batch = linked[start : start + 5000]
        insert_select_with_history(
            GapSource,
            columns,
            f"SELECT {', '.join(select)} FROM {gaps} g "  # noqa: S608
            f"WHERE g.id IN ({', '.join(['%s'] * len(batch))}) AND g.primary_source <> %s "
            f"AND NOT EXISTS (SELECT 1 FROM {sources} s WHERE s.gap_id = g.id AND s.kind = %s)",
            [*params, *batch, SourceKind.ENGINE, SourceKind.ENGINE],
            actor=actor,
            reason="Reported by the engine",
        )
    return linked


@transaction.atomic
def sync_gaps_from_results(
    organization,
    measure: Measure,
    period_start: dt.date,
    period_end: dt.date,
    *,
    actor=None,
    patient_range: tuple[int, int] | None = None,
) -> SyncCounts:
    """Bring the gaps of one measure and period (of the patients in `patient_range`, inclusive;
    None: all) in line with the stored results."""
    actor = actor or get_system_user()
    now = timezone.now()
    today = timezone.localdate()
    counts = SyncCounts()
    created = _open_new_gaps(
        organization,
        measure,
        period_start,
        period_end,
        patient_range,
        actor=actor,
        now=now,
        today=today,
    )
    counts.opened = len(created)
    counts.linked = len(
        _link_to_results(
            organization, measure, period_start, period_end, patient_range, actor=actor, now=now
        )
    )
    pairs = _gaps_to_change(organization, measure, period_start, period_end, patient_range)
    if not pairs:
        # Work items follow in this transaction (worklists subscribes).
        events.publish(events.GAPS_SYNCED, organization=organization, gap_ids=created, actor=actor)
        return counts
    result_of = {gap_id: result_id for result_id, gap_id in pairs}
    results = MeasureResult.objects.only(
        "pk", "patient_id", "status", "evidence", "organization_id"
    ).in_bulk(list(result_of.values()))
    # Locked and read again: an agent's transition committed since the comparison wins.
    locked = CareGap.objects.select_for_update().filter(pk__in=list(result_of)).order_by("pk")
    changed, evidence, reasons = [], [], {}
    for gap in locked:
        result = results[result_of[gap.pk]]
        reason = None
        if result.status == MeasureResult.Status.CLOSED and gap.state != GapState.CLOSED:
            evidence.append(_engine_evidence(gap, result, actor, now, "numerator"))
            gap.state, gap.closed_at, gap.closed_by_engine = GapState.CLOSED, now, True
            gap.needs_coordination, gap.coordination_due = False, None
            gap.next_step, gap.next_step_due = "", None
            reason, counts.closed = (
                "Closed by the engine: new clinical data meets the measure",
                counts.closed + 1,
            )
        elif result.status == MeasureResult.Status.EXCLUDED and gap.state in OPEN_STATES:
            evidence.append(_engine_evidence(gap, result, actor, now, "exclusion"))
            gap.state, gap.not_a_gap_reason = GapState.NOT_A_GAP, NotAGapReason.EXCLUDED
            gap.next_step, gap.next_step_due = "", None
            reason, counts.excluded = (
                "Not a gap: the engine finds the patient excluded",
                counts.excluded + 1,
            )
        elif (
            result.status == MeasureResult.Status.OPEN
            and gap.state == GapState.CLOSED
            and gap.closed_by_engine
        ):
            gap.state, gap.closed_by_engine = GapState.NEEDS_REVIEW, False
            gap.next_step = NextStep.COORDINATOR_REVIEW
            gap.next_step_due = today + dt.timedelta(days=2)
            reason, counts.to_review = (
                "The engine no longer finds what closed this gap; please review",
                counts.to_review + 1,
            )
        if reason is not None:
            gap.state_changed_at = now
            gap.measure_result_id = result.pk
            reasons[gap.pk] = reason
            changed.append(gap)
    fields = [
        "state",
        "state_changed_at",
        "measure_result",
        "closed_at",
        "closed_by_engine",
        "needs_coordination",
        "coordination_due",
        "next_step",
        "next_step_due",
        "not_a_gap_reason",
    ]
    # One history reason per kind of change, so each batch carries the right one.
    by_reason: dict[str, list[CareGap]] = {}
    for gap in changed:
        by_reason.setdefault(reasons[gap.pk], []).append(gap)
    for reason, batch in by_reason.items():
        bulk_update_with_history(batch, fields, actor=actor, reason=reason)
    bulk_create_with_history(evidence, actor=actor, reason="Evidence found by the engine")
    _add_engine_sources(
        [g for g in changed if g.primary_source != SourceKind.ENGINE], actor, now, period_end
    )
    moved = [gap.pk for gap in changed if reasons[gap.pk] != "Linked to the latest evaluation"]
    events.publish(
        events.GAPS_SYNCED, organization=organization, gap_ids=[*created, *moved], actor=actor
    )
    return counts


def _add_engine_sources(gaps: list[CareGap], actor, now, period_end) -> None:
    """A list-reported gap the engine also evaluates gains the engine as a source."""
    if not gaps:
        return
    known = set(
        GapSource.objects.filter(gap__in=gaps, kind=SourceKind.ENGINE).values_list(
            "gap_id", flat=True
        )
    )
    bulk_create_with_history(
        [
            GapSource(
                gap=gap, kind=SourceKind.ENGINE, name="engine", due_date=period_end, reported_at=now
            )
            for gap in gaps
            if gap.pk not in known
        ],
        actor=actor,
        reason="Reported by the engine",
    )


@transaction.atomic
def flag_stale_completions(*, today: dt.date | None = None, actor=None) -> int:
    """Completed gaps without documentation after 14 days become a coordination follow-up."""
    actor = actor or get_system_user()
    today = today or timezone.localdate()
    stale = list(
        CareGap.objects.select_for_update()
        .filter(
            state=GapState.COMPLETED,
            needs_coordination=False,
            completed_on__lte=today - dt.timedelta(days=DOCUMENTATION_DAYS),
        )
        .exclude(evidence__isnull=False)
    )
    for gap in stale:
        gap.needs_coordination = True
        gap.coordination_due = today + dt.timedelta(days=COORDINATION_DAYS)
        gap.next_step = NextStep.COORDINATION_FOLLOW_UP
        gap.next_step_due = gap.coordination_due
    bulk_update_with_history(
        stale,
        ["needs_coordination", "coordination_due", "next_step", "next_step_due"],
        actor=actor,
        reason=f"No documentation {DOCUMENTATION_DAYS} days after completion: coordination "
        "follow-up",
    )
    events.publish(
        events.GAPS_DOCUMENTATION_OVERDUE, gap_ids=[gap.pk for gap in stale], actor=actor
    )
    return len(stale)
