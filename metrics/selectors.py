"""Supervisor metrics, read from the snapshot tables only, scoped to the organizations the
user may see. Each rate carries its definition, shown beside it on the dashboard.

A handful of GROUP BY queries over small tables, whatever the size of the gap and attempt
tables: the event counts come from the month tables (periods are whole months), the standing
counts from the latest day; one query per table for the whole period, split by month.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Max, QuerySet, Sum
from django.db.models.functions import TruncMonth

from metrics.models import (
    AppointmentMonth,
    AttemptMonth,
    FollowUpMonth,
    GapStateDay,
    QualityDay,
    TransitionMonth,
    WorkAgingDay,
)
from metrics.snapshots import AGING_BUCKETS, LAG_STEP_SECONDS, REACHED_OUTCOMES
from patients.selectors import organizations_for

FUNNEL = (
    ("identified", "Identified", "Gaps opened (by the engine, a gap list or staff)."),
    ("validated", "Validated", "Records reviewed: the service is still due."),
    ("outreach", "Reached", "Outreach started: at least one contact attempt made."),
    ("scheduled", "Scheduled", "An appointment for the service was booked."),
    ("completed", "Completed", "The service happened; documentation awaited."),
    ("closed", "Closed", "Closure confirmed with evidence (or found by the engine)."),
)
EXITS = ("not_a_gap", "declined", "unreachable", "needs_review")


@dataclass(frozen=True)
class RateDefinition:
    key: str
    label: str
    definition: str
    unit: str = "%"


RATES = (
    RateDefinition(
        "outreach_completion",
        "Outreach completion rate",
        "Gap transitions into outreach ÷ transitions into validated, in the period: of the gaps "
        "found still due, how many got a contact attempt.",
    ),
    RateDefinition(
        "contact",
        "Contact rate",
        "Attempts whose outcome reached the patient (reached and scheduled, reached and "
        "declined) ÷ all attempts made (attempted) in the period.",
    ),
    RateDefinition(
        "scheduled_appointment",
        "Scheduled-appointment rate",
        "Gap transitions into scheduled ÷ transitions into outreach, in the period.",
    ),
    RateDefinition(
        "closure_confirmation",
        "Closure confirmation rate",
        "Transitions completed → closed ÷ transitions into completed, in the period: completed "
        "services whose documentation arrived and closed the gap.",
    ),
    RateDefinition(
        "no_show",
        "No-show rate",
        "Appointments due in the period marked no-show ÷ those completed or no-show "
        "(cancelled and still open ones are left out).",
    ),
    RateDefinition(
        "recall_conversion",
        "Recall conversion rate",
        "Re-engagement (dormant patient) attempts with outcome 'reached and scheduled' ÷ all "
        "re-engagement attempts made in the period.",
    ),
    RateDefinition(
        "follow_up_completion",
        "Follow-up completion rate",
        "Follow-up tasks (callbacks, unconfirmed-appointment calls, no-show calls, check-ins, "
        "clinical concerns) due in the period and done by their due time ÷ those due.",
    ),
)
RATE_BY_KEY = {rate.key: rate for rate in RATES}
CALLBACK_DEFINITION = (
    "Callback tasks done in the period: time from the inbound message or voicemail to the "
    "callback being done, rounded down to 5 minutes. Median and 90th percentile (nearest "
    "rank), in hours."
)
PRODUCTIVITY_DEFINITION = (
    "Attempts per hour: the agent's own (not automated) attempts ÷ the clock hours in which "
    "they logged at least one attempt. Closures: gap transitions into closed they made."
)
AGING_DEFINITION = (
    "Open work items on the latest snapshot day by age since they were created: "
    + ", ".join(name for name, _low, _high in AGING_BUCKETS)
    + " days."
)
QUALITY_DEFINITION = (
    "From the engine's latest results: numerator ÷ denominator (patients in the denominator, "
    "exclusions removed). Projected: as if every scheduled open gap in the denominator closes "
    "(numerator up; for an inverse measure, where lower is better, down)."
)


@dataclass
class Filters:
    organization_ids: list[int]
    start: dt.date  # first day of the first month
    end: dt.date  # last day of the last month
    measure: str = ""
    agent_ids: list[int] | None = None  # a team's members or one agent; None for everyone
    team_id: int | None = None


@dataclass
class Ratio:
    numerator: int = 0
    denominator: int = 0

    @property
    def value(self) -> float | None:
        return None if not self.denominator else self.numerator / self.denominator

    @property
    def percent(self) -> str:
        return "—" if self.value is None else f"{100 * self.value:.1f}%"


@dataclass
class Dashboard:
    filters: Filters
    months: list[dt.date]
    funnel: list[dict]
    exits: list[dict]
    rates: list[dict]
    trend: dict[str, list[float | None]]
    callback: dict
    aging: list[dict]
    aging_day: dt.date | None
    productivity: list[dict]
    quality: list[dict]
    quality_day: dt.date | None
    states: list[dict] = field(default_factory=list)


def dashboard_organizations(user) -> QuerySet:
    return organizations_for(user)


def month_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def _scoped(queryset, filters: Filters, *, measure: bool = True, actor: str | None = None):
    queryset = queryset.filter(
        organization_id__in=filters.organization_ids, day__gte=filters.start, day__lte=filters.end
    )
    if measure and filters.measure:
        queryset = queryset.filter(measure_code=filters.measure)
    if actor and filters.agent_ids is not None:
        queryset = queryset.filter(**{f"{actor}__in": filters.agent_ids})
    return queryset.order_by()


def _by_month(queryset, keys: tuple[str, ...], total: str):
    return queryset.annotate(month=TruncMonth("day")).values("month", *keys).annotate(n=Sum(total))


def _month(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def rates_by_month(filters: Filters) -> tuple[dict[dt.date, dict[str, Ratio]], dict]:
    """{month: {rate key: Ratio}} and the period's funnel and exit transitions."""
    months: dict[dt.date, dict[str, Ratio]] = defaultdict(lambda: defaultdict(Ratio))
    into: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    moves: dict[tuple[str, str], int] = defaultdict(int)
    transitions = _by_month(
        _scoped(TransitionMonth.objects, filters, actor="actor_id"),
        ("from_state", "to_state"),
        "gaps",
    )
    for r in transitions:
        month = _month(r["month"])
        into[month][r["to_state"]] += r["n"]
        moves[(r["from_state"], r["to_state"])] += r["n"]
        if r["from_state"] == "completed" and r["to_state"] == "closed":
            into[month]["completed->closed"] += r["n"]
    for month, counts in into.items():
        rates = months[month]
        rates["outreach_completion"] = Ratio(counts["outreach"], counts["validated"])
        rates["scheduled_appointment"] = Ratio(counts["scheduled"], counts["outreach"])
        rates["closure_confirmation"] = Ratio(counts["completed->closed"], counts["completed"])

    attempts = _by_month(
        _scoped(AttemptMonth.objects, filters, measure=False, actor="actor_id").exclude(outcome=""),
        ("step", "outcome"),
        "attempts",
    )
    for r in attempts:
        rates = months[_month(r["month"])]
        reached = r["outcome"] in REACHED_OUTCOMES
        rates["contact"].denominator += r["n"]
        rates["contact"].numerator += r["n"] if reached else 0
        if r["step"] == "dormant":
            rates["recall_conversion"].denominator += r["n"]
            if r["outcome"] == "reached_scheduled":
                rates["recall_conversion"].numerator += r["n"]

    appointments = _by_month(
        _scoped(AppointmentMonth.objects, filters, measure=False, actor="booked_by_id"),
        ("status",),
        "appointments",
    )
    for r in appointments:
        rates = months[_month(r["month"])]
        if r["status"] in ("no_show", "completed"):
            rates["no_show"].denominator += r["n"]
            rates["no_show"].numerator += r["n"] if r["status"] == "no_show" else 0

    follow_ups = (
        _scoped(FollowUpMonth.objects, filters, measure=False, actor="done_by_id")
        .annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(due=Sum("due"), on_time=Sum("done_on_time"))
    )
    for r in follow_ups:
        ratio = months[_month(r["month"])]["follow_up_completion"]
        ratio.numerator += r["on_time"] or 0
        ratio.denominator += r["due"] or 0
    return months, {"into": into, "moves": moves}


def percentile(values: list[int], share: float) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(share * n))."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[_nearest_rank(len(ordered), share) - 1])


def _nearest_rank(count: int, share: float) -> int:
    return max(1, -(-round(share * 100) * count // 100))


def _value_at(histogram: list[tuple[int, int]], rank: int) -> int:
    """The value at 1-based `rank` of sorted (value, count) pairs."""
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return value
    raise ValueError("rank past the end")


def callback_times(filters: Filters) -> dict:
    merged: dict[int, int] = defaultdict(int)
    rows = _scoped(FollowUpMonth.objects, filters, measure=False, actor="done_by_id").filter(
        kind="callback"
    )
    for histogram in rows.values_list("lag_histogram", flat=True):
        for step, count in histogram.items():
            merged[int(step) * LAG_STEP_SECONDS] += count
    ordered = sorted(merged.items())
    count = sum(merged.values())
    median = p90 = None
    if count:
        middle = [_value_at(ordered, (count + 1) // 2), _value_at(ordered, count // 2 + 1)]
        median = statistics.mean(middle) / 3600
        p90 = _value_at(ordered, _nearest_rank(count, 0.9)) / 3600
    return {
        "count": count,
        "median_hours": median,
        "p90_hours": p90,
        "definition": CALLBACK_DEFINITION,
    }


def _latest_day(queryset) -> dt.date | None:
    return queryset.aggregate(latest=Max("day"))["latest"]


def aging(filters: Filters) -> tuple[list[dict], dt.date | None]:
    rows = WorkAgingDay.objects.filter(
        organization_id__in=filters.organization_ids, day__lte=filters.end
    )
    if filters.team_id is not None:
        rows = rows.filter(team_id_ref=filters.team_id)
    elif filters.agent_ids is not None:
        rows = rows.filter(owner_id__in=filters.agent_ids)
    day = _latest_day(rows)
    counts = dict(
        rows.filter(day=day)
        .order_by()
        .values("bucket")
        .annotate(n=Sum("items"))
        .values_list("bucket", "n")
    )
    return [{"bucket": name, "items": counts.get(name, 0)} for name, _l, _h in AGING_BUCKETS], day


def productivity(filters: Filters) -> list[dict]:
    agents: dict[int, dict] = {}

    def agent(user_id, username) -> dict:
        return agents.setdefault(
            user_id, {"agent": username, "attempts": 0, "hours": 0, "closures": 0}
        )

    made = (
        _scoped(AttemptMonth.objects, filters, measure=False, actor="actor_id")
        .filter(automated=False, actor__isnull=False)
        .values("actor_id", "actor__username")
        .annotate(attempts=Sum("attempts"), hours=Sum("active_hours"))
    )
    for r in made:
        entry = agent(r["actor_id"], r["actor__username"])
        entry["attempts"], entry["hours"] = r["attempts"] or 0, r["hours"] or 0
    closures = (
        _scoped(TransitionMonth.objects, filters, actor="actor_id")
        .filter(to_state="closed", actor__isnull=False)
        .exclude(actor__username=settings.CAREHUB_SYSTEM_USERNAME)  # the engine's closures
        .values("actor_id", "actor__username")
        .annotate(n=Sum("gaps"))
    )
    for r in closures:
        agent(r["actor_id"], r["actor__username"])["closures"] = r["n"]
    for entry in agents.values():
        entry["per_hour"] = Ratio(entry["attempts"], entry["hours"]).value
    return sorted(agents.values(), key=lambda e: e["agent"])


def quality(filters: Filters) -> tuple[list[dict], dt.date | None]:
    rows = QualityDay.objects.filter(
        organization_id__in=filters.organization_ids, day__lte=filters.end
    )
    if filters.measure:
        rows = rows.filter(measure_code=filters.measure)
    day = _latest_day(rows)
    grouped = (
        rows.filter(day=day)
        .order_by("measure_code", "period_year")
        .values("measure_code", "period_year", "inverse")
        .annotate(
            denominator=Sum("denominator"), numerator=Sum("numerator"), scheduled=Sum("scheduled")
        )
    )
    result = []
    for r in grouped:
        sign = -1 if r["inverse"] else 1
        projected = r["numerator"] + sign * r["scheduled"]
        result.append(
            {
                **r,
                "now": Ratio(r["numerator"], r["denominator"]),
                "projected": Ratio(projected, r["denominator"]),
            }
        )
    return result, day


def gap_states_now(filters: Filters) -> list[dict]:
    rows = GapStateDay.objects.filter(
        organization_id__in=filters.organization_ids, day__lte=filters.end
    )
    if filters.measure:
        rows = rows.filter(measure_code=filters.measure)
    if filters.agent_ids is not None:
        rows = rows.filter(owner_id__in=filters.agent_ids)
    day = _latest_day(rows)
    return list(rows.filter(day=day).order_by("state").values("state").annotate(gaps=Sum("gaps")))


def build_dashboard(filters: Filters) -> Dashboard:
    months = month_starts(filters.start, filters.end)
    by_month, moved = rates_by_month(filters)
    total: dict[str, Ratio] = defaultdict(Ratio)
    for rates in by_month.values():
        for key, ratio in rates.items():
            total[key].numerator += ratio.numerator
            total[key].denominator += ratio.denominator
    into_total: dict[str, int] = defaultdict(int)
    for counts in moved["into"].values():
        for state, n in counts.items():
            into_total[state] += n
    funnel = []
    previous = None
    for state, label, definition in FUNNEL:
        count = into_total.get(state, 0)
        funnel.append(
            {
                "state": state,
                "label": label,
                "count": count,
                "definition": definition,
                "of_previous": Ratio(count, previous).percent if previous is not None else "",
            }
        )
        previous = count
    exits = [
        {"from": source or "(new)", "to": target, "gaps": n}
        for (source, target), n in sorted(moved["moves"].items(), key=lambda kv: -kv[1])
        if target in EXITS or (source == "scheduled" and target == "outreach")
    ]
    aging_rows, aging_day = aging(filters)
    quality_rows, quality_day = quality(filters)
    return Dashboard(
        filters=filters,
        months=months,
        funnel=funnel,
        exits=exits,
        rates=[
            {"rate": rate, "ratio": total[rate.key] if rate.key in total else Ratio()}
            for rate in RATES
        ],
        trend={
            rate.key: [
                (by_month[m][rate.key].value if m in by_month and rate.key in by_month[m] else None)
                for m in months
            ]
            for rate in RATES
        },
        callback=callback_times(filters),
        aging=aging_rows,
        aging_day=aging_day,
        productivity=productivity(filters),
        quality=quality_rows,
        quality_day=quality_day,
        states=gap_states_now(filters),
    )
