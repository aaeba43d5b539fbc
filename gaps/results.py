"""Store the engine's results set-based: compare with what is stored, in SQL, write only changes.

One chunk of results of one measure version goes into a temporary staging table (PostgreSQL
COPY; plain inserts on SQLite), then one `INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE`
creates the new rows and rewrites only those whose populations, status or evidence differ. No
stored result is loaded into Python. MeasureResult is derived data without per-row history (see
gaps.models); its provenance is the EvaluationRun that last changed it.
"""

from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.db import connection
from django.utils import timezone

from gaps.engine import MeasureEvaluation
from gaps.models import EvaluationRun, Measure, MeasureResult

DEQM_STATUS = {
    "open": MeasureResult.GapStatus.OPEN,
    "closed": MeasureResult.GapStatus.CLOSED,
    "not-applicable": MeasureResult.GapStatus.NOT_APPLICABLE,
}

STAGE = "carehub_result_stage"
STAGED = ("patient_id", "ip", "denom", "denex", "numer", "status", "gap_status", "evidence")
COMPARED = STAGED[1:]


def gap_status(status: str, period_end: dt.date, today: dt.date) -> str:
    if status == "excluded":
        # DEQM has no "excluded"; which code clients want is a setting (measures.md 4).
        return settings.CAREHUB_DEQM_EXCLUDED_AS
    if status == "open" and today < period_end:
        return MeasureResult.GapStatus.PROSPECTIVE  # still time to close it in the period
    return DEQM_STATUS[status]


def stage_rows(name: str, columns: list[tuple[str, str]], rows: list[tuple]) -> None:
    """Fill the temporary table `name` (created on first use, emptied otherwise) with `rows`:
    PostgreSQL COPY, plain inserts on SQLite. `columns` are (name, SQL type) pairs."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} "
            f"({', '.join(f'{column} {kind}' for column, kind in columns)})"
        )
        cursor.execute(f"DELETE FROM {name}")  # noqa: S608
        names = ", ".join(column for column, _ in columns)
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(
                f"INSERT INTO {name} ({names}) VALUES ({', '.join(['%s'] * len(columns))})",  # noqa: S608
                rows,
            )


def _stage(rows: list[tuple]) -> None:
    postgres = connection.vendor == "postgresql"
    stage_rows(
        STAGE,
        [
            ("patient_id", "bigint NOT NULL"),
            *((c, "boolean NOT NULL") for c in ("ip", "denom", "denex", "numer")),
            ("status", "varchar(16) NOT NULL"),
            ("gap_status", "varchar(16) NOT NULL"),
            ("evidence", f"{'jsonb' if postgres else 'text'} NOT NULL"),
        ],
        rows,
    )


def store_results(
    evaluation: MeasureEvaluation,
    *,
    measure: Measure,
    run: EvaluationRun,
    today: dt.date,
) -> dict:
    """Write the evaluation's results (the caller holds the transaction); return the tally of
    statuses and how many rows were created or changed."""
    inverse = evaluation.definition.inverse
    period_end = run.period_end
    tally = {"open": 0, "closed": 0, "excluded": 0, "not-applicable": 0}
    rows = []
    for result in evaluation.results:
        status = result.status(inverse)
        tally[status] += 1
        rows.append(
            (
                result.patient_id,
                result.ip,
                result.denom,
                result.denex,
                result.numer,
                status,
                gap_status(status, period_end, today),
                # Django's JSONField text on SQLite: equal evidence compares equal as text.
                json.dumps([e.as_json() for e in result.evidence]),
            )
        )
    if not rows:
        return tally
    _stage(rows)
    postgres = connection.vendor == "postgresql"
    table = MeasureResult._meta.db_table
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"INSERT INTO {table} AS r (organization_id, measure_id, period_start, period_end, "  # noqa: S608
        f"evaluation_run_id, evaluated_at, {', '.join(STAGED)}) "
        f"SELECT %s, %s, %s, %s, %s, %s, {', '.join('s.' + c for c in STAGED)} "
        f"FROM {STAGE} s WHERE true "
        "ON CONFLICT (patient_id, measure_id, period_start, period_end) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in (*COMPARED, "evaluation_run_id", "evaluated_at"))
        + f" WHERE ({', '.join('r.' + c for c in COMPARED)}) {differs} "
        f"({', '.join('excluded.' + c for c in COMPARED)})"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                run.organization_id,
                measure.pk,
                connection.ops.adapt_datefield_value(run.period_start),
                connection.ops.adapt_datefield_value(run.period_end),
                run.pk,
                now,
            ],
        )
        tally["stored"] = cursor.rowcount  # created or changed
    return tally
