"""Engine results flow into care gaps, and the 14-day documentation rule.

After each evaluation, per measure, period and chunk of patients (set-based, a few statements
per measure; what to change is decided in SQL against the stored results and only the gaps that
change are written, each with its history row in the same statement on PostgreSQL):
- an open result with no gap opens one (identified, source: engine);
- a met numerator closes the gap from any state but closed, with the resource the engine found as
  evidence; pending outreach stops because the gap is no longer open;
- an excluded patient's gap becomes not_a_gap (reason: excluded), with the exclusion's record;
- a gap the engine had closed but whose numerator is no longer met goes to needs_review;
- everything else keeps its workflow state.
A gap the engine opened, moved or finds open has an engine source (one, never a second). The
gap's result is found by patient, measure and period (gaps.selectors.engine_results), not
stored on the gap. The system user acts; each change leaves a history row with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from carehub import events
from carehub.history import (
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
from gaps.results import stage_rows

COORDINATION_DAYS = 2
NOT_GIVEN = object()


@dataclass
class SyncCounts:
    opened: int = 0
    closed: int = 0
    excluded: int = 0
    to_review: int = 0


class _Sql(str):
    """A value given as SQL (a column of the query), not as a parameter."""


def _values(model, values: dict) -> tuple[list[str], list[str], list]:
    """The columns of a new `model` row, what to select for each (SQL or `%s`) and the
    parameters: `values` by field name, the field's default for the rest."""
    columns, select, params = [], [], []
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(model_field.column)
        value = values.get(model_field.name, NOT_GIVEN)
        if isinstance(value, _Sql):
            select.append(value)
            continue
        select.append("%s")
        params.append(
            model_field.get_db_prep_save(
                model_field.get_default() if value is NOT_GIVEN else value, connection
            )
        )
    return columns, select, params


def _assignments(**values) -> tuple[str, list]:
    """`SET` clause of a CareGap update: field name -> value (or _Sql), and its parameters."""
    sql, params = [], []
    for name, value in values.items():
        model_field = CareGap._meta.get_field(name)
        if isinstance(value, _Sql):
            sql.append(f"{model_field.column} = {value}")
        else:
            sql.append(f"{model_field.column} = %s")
            params.append(model_field.get_db_prep_save(value, connection))
    return ", ".join(sql), params


def _id_batches(ids: list[int]) -> list[list[int]]:
    """`ids` in batches the database accepts as parameters: one array on PostgreSQL."""
    if connection.vendor == "postgresql":
        return [list(ids)]
    return [ids[start : start + 5000] for start in range(0, len(ids), 5000)]


def _id_test(column: str, batch: list[int]) -> tuple[str, list]:
    """SQL testing `column` against a batch of `_id_batches`, and its parameters."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [batch]
    return f"{column} IN ({', '.join(['%s'] * len(batch))})", batch


def _open_new_gaps(
    organization,
    measure: Measure,
    period_start,
    period_end,
    patient_range,
    *,
    actor,
    now,
    today,
    suffix,
) -> list[int]:
    """One `INSERT … SELECT` opens a gap for every open result without one (history written
    set-based in the same transaction); a gap someone else opened meanwhile is left alone."""
    columns, select, params = _values(
        CareGap,
        {
            "organization": _Sql("r.organization_id"),
            "patient": _Sql("r.patient_id"),
            "measure": _Sql("r.measure_id"),
            "period_start": _Sql("r.period_start"),
            "period_end": _Sql("r.period_end"),
            "measure_code": measure.cms,
            "primary_source": SourceKind.ENGINE,
            "state": GapState.IDENTIFIED,
            "state_changed_at": now,
            "next_step": NextStep.REVIEW_RECORDS,
            "next_step_due": today + dt.timedelta(days=2),
            "due_date": period_end,
            "measure_weight": MEASURE_WEIGHTS.get(measure.cms, 1),
            "created_at": now,
        },
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
    return insert_select_with_history(
        CareGap,
        columns,
        sql,
        params,
        actor=actor,
        reason=f"Opened by the engine: the service is due{suffix}",
        skip_conflicts=True,
    )


def _join_results(organization, measure: Measure, period_start, period_end, patient_range):
    """SQL joining a measure's results (r) to their gaps (the table itself), and its params."""
    gaps = CareGap._meta.db_table
    sql = (
        f"r.patient_id = {gaps}.patient_id AND {gaps}.measure_code = %s "
        f"AND {gaps}.period_start = r.period_start AND {gaps}.period_end = r.period_end "
        "AND r.organization_id = %s AND r.measure_id = %s AND r.period_start = %s "
        "AND r.period_end = %s"
        # The gaps' own range too: PostgreSQL then reads the chunk's gaps by patient instead
        # of every gap of the period (measured 1.1 s -> 0.4 s a chunk).
        + (
            f" AND r.patient_id BETWEEN %s AND %s AND {gaps}.patient_id BETWEEN %s AND %s"
            if patient_range
            else ""
        )
    )
    params = [
        measure.cms,
        organization.pk,
        measure.pk,
        connection.ops.adapt_datefield_value(period_start),
        connection.ops.adapt_datefield_value(period_end),
        *(patient_range or ()),
        *(patient_range or ()),
    ]
    return sql, params


@dataclass(frozen=True)
class _Move:
    """A workflow move the engine's results make: which results and gap states it applies to,
    what it writes, the history reason, and the kind of evidence it cites (if any)."""

    counted: str
    status: str
    states: tuple[str, ...]
    reason: str
    evidence_kind: str | None = None
    closed_by_engine_only: bool = False
    other_states: bool = False  # `states` are the states it does *not* apply to


_MOVES = (
    _Move(
        "closed",
        MeasureResult.Status.CLOSED,
        (GapState.CLOSED,),
        "Closed by the engine: new clinical data meets the measure",
        evidence_kind="numerator",
        other_states=True,
    ),
    _Move(
        "excluded",
        MeasureResult.Status.EXCLUDED,
        tuple(sorted(OPEN_STATES)),
        "Not a gap: the engine finds the patient excluded",
        evidence_kind="exclusion",
    ),
    _Move(
        "to_review",
        MeasureResult.Status.OPEN,
        (GapState.CLOSED,),
        "The engine no longer finds what closed this gap; please review",
        closed_by_engine_only=True,
    ),
)


def _move_condition(move: _Move) -> tuple[str, list]:
    gaps = CareGap._meta.db_table
    sql = (
        f"(r.status = %s AND {gaps}.state {'NOT IN' if move.other_states else 'IN'} "
        f"({', '.join(['%s'] * len(move.states))})"
        + (f" AND {gaps}.closed_by_engine" if move.closed_by_engine_only else "")
        + ")"
    )
    return sql, [move.status, *move.states]


def _move_assignments(move: _Move, *, now, today) -> tuple[str, list]:
    common = {"state_changed_at": now}
    if move.counted == "closed":
        return _assignments(
            state=GapState.CLOSED,
            closed_at=now,
            closed_by_engine=True,
            needs_coordination=False,
            coordination_due=None,
            next_step="",
            next_step_due=None,
            **common,
        )
    if move.counted == "excluded":
        return _assignments(
            state=GapState.NOT_A_GAP,
            not_a_gap_reason=NotAGapReason.EXCLUDED,
            next_step="",
            next_step_due=None,
            **common,
        )
    return _assignments(
        state=GapState.NEEDS_REVIEW,
        closed_by_engine=False,
        next_step=NextStep.COORDINATOR_REVIEW,
        next_step_due=today + dt.timedelta(days=2),
        **common,
    )


def _reported_gaps(
    organization, measure: Measure, period_start, period_end, patient_range
) -> list[int]:
    """The gaps whose result is open and that have no engine source yet: the engine also
    finds due what a list reported."""
    gaps, sources = CareGap._meta.db_table, GapSource._meta.db_table
    join, params = _join_results(organization, measure, period_start, period_end, patient_range)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {gaps}.id FROM {gaps}, {MeasureResult._meta.db_table} r "  # noqa: S608
            f"WHERE {join} AND r.status = %s AND NOT EXISTS (SELECT 1 FROM {sources} s "
            f"WHERE s.gap_id = {gaps}.id AND s.kind = %s)",
            [*params, MeasureResult.Status.OPEN, SourceKind.ENGINE],
        )
        return [row[0] for row in cursor.fetchall()]


def _move_gaps(
    organization,
    measure: Measure,
    period_start,
    period_end,
    patient_range,
    *,
    actor,
    now,
    today,
    steps,
    suffix,
) -> dict[_Move, list[int]]:
    """Each workflow move in one `UPDATE … FROM` with its reason in the history. The update
    locks each row and checks its state again when it gets it: an agent's transition
    committed meanwhile wins (the gap no longer matches, it is left alone)."""
    join, join_params = _join_results(
        organization, measure, period_start, period_end, patient_range
    )
    moved = {}
    for move in _MOVES:
        if move.counted not in steps:
            continue
        assignments, assignment_params = _move_assignments(move, now=now, today=today)
        condition, condition_params = _move_condition(move)
        moved[move] = update_from_with_history(
            CareGap,
            assignments=assignments,
            from_sql=f"{MeasureResult._meta.db_table} r",
            where=f"{join} AND {condition}",
            params=[*assignment_params, *join_params, *condition_params],
            actor=actor,
            reason=f"{move.reason}{suffix}",
        )
    return moved


def _engine_evidence(result_id: int, evidence: list[dict], kind: str) -> tuple:
    """(service date, reference) of what the engine found for `kind` (numerator or exclusion).
    An inverse measure (CMS122) closes when its numerator finds nothing: no record to cite, so
    the result itself is the evidence."""
    found = [e for e in evidence if e.get("criterion", "").startswith(kind)]
    first = found[0] if found else {}
    service_date = None
    if first.get("date"):
        try:
            service_date = dt.date.fromisoformat(first["date"][:10])
        except ValueError:
            service_date = None
    reference = ", ".join(e.get("resource", "") for e in found)[:300]
    return service_date, reference or f"Measure result #{result_id}"


EVIDENCE_STAGE = "carehub_gap_evidence_stage"


def _add_evidence(moved: dict[_Move, list[int]], measure: Measure, *, actor, now, suffix) -> None:
    """The engine's evidence for the gaps it closed or excluded: computed from their results
    (only those gaps' results are read), staged, then one `INSERT … SELECT` with history."""
    gaps, results = CareGap._meta.db_table, MeasureResult._meta.db_table
    rows = []
    for move, gap_ids in moved.items():
        if move.evidence_kind is None or not gap_ids:
            continue
        for batch in _id_batches(gap_ids):
            where, params = _id_test("g.id", batch)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT g.id, g.organization_id, r.id, r.evidence FROM {gaps} g "  # noqa: S608
                    f"JOIN {results} r ON r.patient_id = g.patient_id AND r.measure_id = %s "
                    "AND r.period_start = g.period_start AND r.period_end = g.period_end "
                    f"WHERE {where}",
                    [measure.pk, *params],
                )
                for gap_id, organization_id, result_id, evidence in cursor.fetchall():
                    if isinstance(evidence, str):  # SQLite keeps JSON as text
                        evidence = json.loads(evidence)
                    service_date, reference = _engine_evidence(
                        result_id, evidence, move.evidence_kind
                    )
                    rows.append(
                        (
                            gap_id,
                            organization_id,
                            connection.ops.adapt_datefield_value(service_date),
                            reference,
                        )
                    )
    if not rows:
        return
    stage_rows(
        EVIDENCE_STAGE,
        [
            ("gap_id", "bigint"),
            ("organization_id", "bigint"),
            ("service_date", "date"),
            ("reference", "varchar(300)"),
        ],
        rows,
    )
    columns, select, params = _values(
        GapEvidence,
        {
            "organization": _Sql("e.organization_id"),
            "gap": _Sql("e.gap_id"),
            "kind": GapEvidence.Kind.ENGINE_RESOURCE,
            "service_date": _Sql("e.service_date"),
            "reference": _Sql("e.reference"),
            "added_by": actor.pk,
            "added_at": now,
        },
    )
    insert_select_with_history(
        GapEvidence,
        columns,
        f"SELECT {', '.join(select)} FROM {EVIDENCE_STAGE} e",  # noqa: S608
        params,
        actor=actor,
        reason=f"Evidence found by the engine{suffix}",
    )


def _add_engine_sources(gap_ids: list[int], *, actor, now, period_end, suffix) -> None:
    """The gaps the engine opened, moved or finds open that have no engine source gain one,
    set-based."""
    if not gap_ids:
        return
    gaps, sources = CareGap._meta.db_table, GapSource._meta.db_table
    columns, select, params = _values(
        GapSource,
        {
            "gap": _Sql("g.id"),
            "kind": SourceKind.ENGINE,
            "name": "engine",
            "due_date": period_end,
            "reported_at": now,
        },
    )
    for batch in _id_batches(gap_ids):
        where, id_params = _id_test("g.id", batch)
        # Only the sources of these gaps (the id test again): PostgreSQL then merges two index
        # reads instead of hashing every source of every gap (first run, 100,000 patients:
        # 0.23 s -> 0.014 s a statement, 70 statements).
        source_where, source_params = _id_test("s.gap_id", batch)
        insert_select_with_history(
            GapSource,
            columns,
            f"SELECT {', '.join(select)} FROM {gaps} g WHERE {where} "  # noqa: S608
            f"AND NOT EXISTS (SELECT 1 FROM {sources} s WHERE s.gap_id = g.id AND s.kind = %s "
            f"AND {source_where})",
            [*params, *id_params, SourceKind.ENGINE, *source_params],
            actor=actor,
            reason=f"Reported by the engine{suffix}",
            skip_conflicts=True,
        )


STEPS = ("open", "report", *(move.counted for move in _MOVES))
# The result statuses some step acts on (opening and reporting act on open results).
ACTED_ON = tuple(dict.fromkeys((MeasureResult.Status.OPEN, *(move.status for move in _MOVES))))


def pending_steps(
    organization, measures: list[Measure], period_start, period_end, patient_range
) -> dict[int, set[str]]:
    """Measure id -> the sync steps (STEPS) the stored results call for in this chunk, read in
    one query over every measure: the steps with nothing to do are skipped, so an unchanged
    rerun reads once and writes nothing. The steps themselves decide again in SQL as they
    write (a gap an agent moved since this read is judged on its new state)."""
    if not measures:
        return {}
    gaps, results = CareGap._meta.db_table, MeasureResult._meta.db_table
    counted = [
        ("open", f"{gaps}.id IS NULL AND r.status = %s", [MeasureResult.Status.OPEN]),
        (
            "report",
            f"{gaps}.id IS NOT NULL AND r.status = %s AND NOT EXISTS (SELECT 1 FROM "  # noqa: S608
            f"{GapSource._meta.db_table} s WHERE s.gap_id = {gaps}.id AND s.kind = %s)",
            [MeasureResult.Status.OPEN, SourceKind.ENGINE],
        ),
        *((move.counted, *_move_condition(move)) for move in _MOVES),
    ]
    sums, params = [], []
    for _, condition, condition_params in counted:
        sums.append(f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)")
        params += condition_params
    sql = (
        f"SELECT r.measure_id, {', '.join(sums)} FROM {results} r "  # noqa: S608
        f"JOIN {Measure._meta.db_table} m ON m.id = r.measure_id "
        f"LEFT JOIN {gaps} ON {gaps}.patient_id = r.patient_id AND {gaps}.measure_code = m.cms "
        f"AND {gaps}.period_start = r.period_start AND {gaps}.period_end = r.period_end "
        + (f"AND {gaps}.patient_id BETWEEN %s AND %s " if patient_range else "")
        + f"WHERE r.organization_id = %s AND r.measure_id IN ({', '.join(['%s'] * len(measures))}) "
        "AND r.period_start = %s AND r.period_end = %s"
        + (" AND r.patient_id BETWEEN %s AND %s" if patient_range else "")
        # Only the statuses a step acts on: most results are not-applicable (9 in 10 on the
        # scale seed), and looking up their gaps and sources found nothing to do.
        + f" AND r.status IN ({', '.join(['%s'] * len(ACTED_ON))}) GROUP BY r.measure_id"
    )
    params += [
        *(patient_range or ()),  # the gaps' own range (see _join_results)
        organization.pk,
        *(measure.pk for measure in measures),
        connection.ops.adapt_datefield_value(period_start),
        connection.ops.adapt_datefield_value(period_end),
        *(patient_range or ()),
        *ACTED_ON,
    ]
    pending: dict[int, set[str]] = {measure.pk: set() for measure in measures}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for measure_id, *found in cursor.fetchall():
            pending[measure_id] = {
                step for (step, _, _), count in zip(counted, found, strict=True) if count
            }
    return pending


@transaction.atomic
def sync_gaps_from_results(
    organization,
    measure: Measure,
    period_start: dt.date,
    period_end: dt.date,
    *,
    actor=None,
    patient_range: tuple[int, int] | None = None,
    steps: set[str] | None = None,
    run=None,
) -> SyncCounts:
    """Bring the gaps of one measure and period (of the patients in `patient_range`, inclusive;
    None: all) in line with the stored results. Every write is a set-based statement that
    touches only the gaps that change; an unchanged rerun writes nothing. `steps` (from
    `pending_steps`) skips the steps known to have nothing to do; None runs them all. The
    history reasons name the evaluation `run` that made the change, when given."""
    actor = actor or get_system_user()
    steps = set(STEPS) if steps is None else steps
    counts = SyncCounts()
    if not steps:
        return counts
    now = timezone.now()
    today = timezone.localdate()
    where = (organization, measure, period_start, period_end, patient_range)
    suffix = f" (evaluation run #{run.pk})" if run is not None else ""
    # Read before opening: the gaps opened below gain their source as `created`.
    reported = _reported_gaps(*where) if "report" in steps else []
    created = (
        _open_new_gaps(*where, actor=actor, now=now, today=today, suffix=suffix)
        if "open" in steps
        else []
    )
    moved = _move_gaps(*where, actor=actor, now=now, today=today, steps=steps, suffix=suffix)
    _add_evidence(moved, measure, actor=actor, now=now, suffix=suffix)
    moved_ids = [gap_id for gap_ids in moved.values() for gap_id in gap_ids]
    _add_engine_sources(
        [*created, *reported, *moved_ids],
        actor=actor,
        now=now,
        period_end=period_end,
        suffix=suffix,
    )
    counts.opened = len(created)
    for move, gap_ids in moved.items():
        setattr(counts, move.counted, len(gap_ids))
    if created or moved_ids:
        # Work items follow in this transaction (worklists subscribes).
        events.publish(
            events.GAPS_SYNCED,
            organization=organization,
            gap_ids=[*created, *moved_ids],
            actor=actor,
        )
    return counts


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
