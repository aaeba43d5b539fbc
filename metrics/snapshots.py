"""The nightly snapshot: aggregate queries over the operational tables (GROUP BY in the
database; only the small aggregated rows come back), written into the metrics day tables.

`take_snapshot(day)` replaces the rows of `day`: standing counts (gap states, open work by age,
quality) as they are now, events (transitions, attempts, appointments, follow-ups) of that day.
`snapshot_events(day)` recomputes a past day's events from history.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, F, Q, Sum, Value, When
from django.db.models.functions import ExtractYear, TruncHour
from django.utils import timezone

from carehub.history import bulk_create_untracked
from gaps.care_gaps import CareGap, GapState
from gaps.models import MeasureResult
from gaps.selectors import gap_has_result
from metrics.models import (
    AppointmentDay,
    AppointmentMonth,
    AttemptDay,
    AttemptMonth,
    FollowUpDay,
    FollowUpMonth,
    GapStateDay,
    QualityDay,
    SnapshotRun,
    TransitionDay,
    TransitionMonth,
    WorkAgingDay,
)

AGING_BUCKETS = (
    ("0-2", 0, 2),
    ("3-7", 3, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("30+", 31, None),
)
REACHED_OUTCOMES = ("reached_scheduled", "reached_declined")
LAG_STEP_SECONDS = 300  # response times are kept rounded down to 5 minutes


def _bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min), dt.UTC)
    return start, start + dt.timedelta(days=1)


def _replace(model, day: dt.date, rows: list) -> int:
    model.objects.filter(day=day).delete()
    bulk_create_untracked(rows)
    return len(rows)


def gap_states(day: dt.date) -> list[GapStateDay]:
    grouped = (
        CareGap.objects.order_by()
        .values("organization_id", "measure_code", "owner_id", "state")
        .annotate(year=ExtractYear("period_start"), n=Count("id"))
    )
    return [
        GapStateDay(
            day=day,
            organization_id=r["organization_id"],
            measure_code=r["measure_code"],
            period_year=r["year"],
            owner_id=r["owner_id"],
            state=r["state"],
            gaps=r["n"],
        )
        for r in grouped
    ]


def transitions(day: dt.date) -> list[TransitionDay]:
    """Each gap history row of `day` whose state differs from the gap's previous row (LAG over
    the gap's rows; the previous row may be older than the day)."""
    history = CareGap.history.model._meta.db_table
    start, end = _bounds(day)
    sql = f"""
        SELECT organization_id, measure_code, history_user_id, prev_state, state, COUNT(*)
        FROM (
            SELECT h.organization_id, h.measure_code, h.history_user_id, h.state,
                   h.history_date,
                   LAG(h.state) OVER (
                       PARTITION BY h.id ORDER BY h.history_date, h.history_id
                   ) AS prev_state
            FROM {history} h
            WHERE h.id IN (
                SELECT id FROM {history} WHERE history_date >= %s AND history_date < %s
            ) AND h.history_date < %s
        ) t
        WHERE t.history_date >= %s AND (t.prev_state IS NULL OR t.prev_state <> t.state)
        GROUP BY organization_id, measure_code, history_user_id, prev_state, state
    """  # noqa: S608 (the table name comes from the model)
    with connection.cursor() as cursor:
        cursor.execute(sql, [start, end, end, start])
        rows = cursor.fetchall()
    return [
        TransitionDay(
            day=day,
            organization_id=org,
            measure_code=code,
            actor_id=actor,
            from_state=prev or "",
            to_state=state,
            gaps=n,
        )
        for org, code, actor, prev, state, n in rows
    ]


def attempts(day: dt.date) -> list[AttemptDay]:
    if not apps.is_installed("outreach"):
        return []
    from outreach.models import OutreachAttempt

    start, end = _bounds(day)
    made = OutreachAttempt.objects.filter(attempted_at__gte=start, attempted_at__lt=end).order_by()
    rows = [
        AttemptDay(
            day=day,
            organization_id=r["organization_id"],
            actor_id=r["actor_id"],
            automated=r["automated"],
            channel=r["channel"],
            step=r["step"],
            outcome=r["outcome"],
            attempts=r["n"],
        )
        for r in made.values(
            "organization_id", "actor_id", "automated", "channel", "step", "outcome"
        ).annotate(n=Count("id"))
    ]
    hours = (
        made.filter(automated=False)
        .values("organization_id", "actor_id")
        .annotate(hours=Count(TruncHour("attempted_at"), distinct=True))
    )
    rows += [
        AttemptDay(
            day=day,
            organization_id=r["organization_id"],
            actor_id=r["actor_id"],
            automated=False,
            channel="",
            step="",
            outcome="",
            attempts=0,
            active_hours=r["hours"],
        )
        for r in hours
    ]
    return rows


def appointments(day: dt.date) -> list[AppointmentDay]:
    if not apps.is_installed("outreach"):
        return []
    from outreach.models import Appointment

    start, end = _bounds(day)
    grouped = (
        Appointment.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .order_by()
        .values("organization_id", "booked_by_id", "status")
        .annotate(n=Count("id"))
    )
    return [
        AppointmentDay(
            day=day,
            organization_id=r["organization_id"],
            booked_by_id=r["booked_by_id"],
            status=r["status"],
            appointments=r["n"],
        )
        for r in grouped
    ]


def follow_ups(day: dt.date) -> list[FollowUpDay]:
    if not apps.is_installed("outreach"):
        return []
    from outreach.models import FollowUp

    start, end = _bounds(day)
    by_key: dict[tuple, FollowUpDay] = {}

    def row(org, kind, done_by) -> FollowUpDay:
        key = (org, kind, done_by)
        if key not in by_key:
            by_key[key] = FollowUpDay(
                day=day, organization_id=org, kind=kind, done_by_id=done_by, lag_histogram={}
            )
        return by_key[key]

    due = (
        FollowUp.objects.filter(due_at__gte=start, due_at__lt=end)
        .order_by()
        .values("organization_id", "kind", "done_by_id")
        .annotate(n=Count("id"), on_time=Count("id", filter=Q(done_at__lte=F("due_at"))))
    )
    for r in due:
        entry = row(r["organization_id"], r["kind"], r["done_by_id"])
        entry.due, entry.done_on_time = r["n"], r["on_time"]
    done = FollowUp.objects.filter(
        done_at__gte=start, done_at__lt=end, lag_seconds__isnull=False
    ).values_list("organization_id", "kind", "done_by_id", "lag_seconds")
    for org, kind, done_by, lag in done.order_by():
        histogram = row(org, kind, done_by).lag_histogram
        step = str(lag // LAG_STEP_SECONDS)
        histogram[step] = histogram.get(step, 0) + 1
    return list(by_key.values())


def work_aging(day: dt.date) -> list[WorkAgingDay]:
    if not apps.is_installed("worklists"):
        return []
    from worklists.models import WorkItem

    _start, end = _bounds(day)
    whens = []
    for name, low, high in AGING_BUCKETS:
        newest = end - dt.timedelta(days=low)
        condition = Q(created_at__lt=newest)
        if high is not None:
            condition &= Q(created_at__gte=end - dt.timedelta(days=high + 1))
        whens.append(When(condition, then=Value(name)))
    grouped = (
        WorkItem.objects.filter(state=WorkItem.State.OPEN, created_at__lt=end)
        .order_by()
        .annotate(bucket=Case(*whens, default=Value("0-2"), output_field=CharField()))
        .values("organization_id", "queue__team_id", "owner_id", "kind", "bucket")
        .annotate(n=Count("id"))
    )
    return [
        WorkAgingDay(
            day=day,
            organization_id=r["organization_id"],
            team_id_ref=r["queue__team_id"],
            owner_id=r["owner_id"],
            kind=r["kind"],
            bucket=r["bucket"],
            items=r["n"],
        )
        for r in grouped
    ]


def quality(day: dt.date) -> list[QualityDay]:
    """Per organization, measure and period year: the engine's denominator (in it, not
    excluded) and numerator, and the open gaps in the denominator that are scheduled now and
    would move the numerator when they close (up for a normal measure, down for an inverse)."""
    in_denominator = Q(denom=True, denex=False)
    results = (
        MeasureResult.objects.filter(in_denominator)
        .order_by()
        .values("organization_id", "measure__cms", "measure__inverse")
        .annotate(
            year=ExtractYear("period_start"),
            denominator=Count("id"),
            numerator=Count("id", filter=Q(numer=True)),
        )
    )
    scheduled = (
        CareGap.objects.filter(
            gap_has_result(denom=True, denex=False, numer=F("measure__inverse")),
            state=GapState.SCHEDULED,
        )
        .order_by()
        .values("organization_id", "measure_code")
        .annotate(year=ExtractYear("period_start"), n=Count("id"))
    )
    waiting = defaultdict(int)
    for r in scheduled:
        waiting[(r["organization_id"], r["measure_code"], r["year"])] += r["n"]
    return [
        QualityDay(
            day=day,
            organization_id=r["organization_id"],
            measure_code=r["measure__cms"],
            period_year=r["year"],
            inverse=r["measure__inverse"],
            denominator=r["denominator"],
            numerator=r["numerator"],
            scheduled=waiting[(r["organization_id"], r["measure__cms"], r["year"])],
        )
        for r in results
    ]


EVENT_TABLES = {
    TransitionDay: transitions,
    AttemptDay: attempts,
    AppointmentDay: appointments,
    FollowUpDay: follow_ups,
}
STANDING_TABLES = {GapStateDay: gap_states, WorkAgingDay: work_aging, QualityDay: quality}


# day table -> (its month table, the fields that add up)
MONTHLY = {
    TransitionDay: (TransitionMonth, ("gaps",)),
    AttemptDay: (AttemptMonth, ("attempts", "active_hours")),
    AppointmentDay: (AppointmentMonth, ("appointments",)),
    FollowUpDay: (FollowUpMonth, ("due", "done_on_time")),
}


def roll_up_month(day: dt.date) -> dict[str, int]:
    """Rewrite the month rows of `day`'s month from its day rows (GROUP BY in the database;
    the follow-ups' response-time histograms are merged here)."""
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    written = {}
    for day_model, (month_model, summed) in MONTHLY.items():
        dimensions = [
            f.attname
            for f in day_model._meta.concrete_fields
            if f.name not in ("id", "day", "lag_histogram", *summed)
        ]
        rows = day_model.objects.filter(day__gte=start, day__lt=end).order_by()
        if day_model is FollowUpDay:
            merged: dict[tuple, FollowUpMonth] = {}
            for row in rows.iterator(chunk_size=2000):
                key = tuple(getattr(row, name) for name in dimensions)
                entry = merged.setdefault(
                    key,
                    FollowUpMonth(
                        day=start, lag_histogram={}, **dict(zip(dimensions, key, strict=True))
                    ),
                )
                entry.due += row.due
                entry.done_on_time += row.done_on_time
                for step, count in row.lag_histogram.items():
                    entry.lag_histogram[step] = entry.lag_histogram.get(step, 0) + count
            month_rows = list(merged.values())
        else:
            grouped = rows.values(*dimensions).annotate(**{f"sum_{f}": Sum(f) for f in summed})
            month_rows = [
                month_model(
                    day=start,
                    **{name: r[name] for name in dimensions},
                    **{f: r[f"sum_{f}"] for f in summed},
                )
                for r in grouped
            ]
        written[month_model.__name__] = _replace(month_model, start, month_rows)
    return written


def snapshot_events(day: dt.date) -> dict[str, int]:
    """The events of `day`, then its month's totals."""
    with transaction.atomic():
        written = {
            m.__name__: _replace(m, day, compute(day)) for m, compute in EVENT_TABLES.items()
        }
        written.update(roll_up_month(day))
        return written


def take_snapshot(day: dt.date | None = None, *, events_day: dt.date | None = None) -> dict:
    """Standing counts for `day` (today by default) and the events of `events_day` (the
    day before by default, complete by the time the nightly run starts)."""
    started = timezone.now()
    clock = time.perf_counter()
    day = day or timezone.now().date()
    events_day = events_day or day - dt.timedelta(days=1)
    with transaction.atomic():
        written = {
            m.__name__: _replace(m, day, compute(day)) for m, compute in STANDING_TABLES.items()
        }
        written.update(snapshot_events(events_day))
        SnapshotRun.objects.create(
            day=day, started_at=started, seconds=time.perf_counter() - clock, rows=written
        )
    return written
