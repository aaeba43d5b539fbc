"""The dashboard's figures as CSV rows and as chart data."""

from __future__ import annotations

from collections.abc import Iterator

from audit.exports import csv_lines
from metrics.selectors import RATES, Dashboard


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def dashboard_rows(board: Dashboard) -> Iterator[tuple]:
    period = f"{board.filters.start}..{board.filters.end}"
    for step in board.funnel:
        yield ("funnel", step["label"], period, step["count"], "", "", step["definition"])
    for exit_ in board.exits:
        yield ("drop-off", f"{exit_['from']} -> {exit_['to']}", period, exit_["gaps"], "", "", "")
    for row in board.rates:
        rate, ratio = row["rate"], row["ratio"]
        yield (
            "rate",
            rate.label,
            period,
            ratio.numerator,
            ratio.denominator,
            _fmt(ratio.value),
            rate.definition,
        )
    for rate in RATES:
        for month, value in zip(board.months, board.trend[rate.key], strict=True):
            yield ("trend", rate.label, month.strftime("%Y-%m"), "", "", _fmt(value), "")
    callback = board.callback
    yield (
        "callback response time",
        "median hours",
        period,
        callback["count"],
        "",
        _fmt(callback["median_hours"], 2),
        callback["definition"],
    )
    yield (
        "callback response time",
        "p90 hours",
        period,
        callback["count"],
        "",
        _fmt(callback["p90_hours"], 2),
        "",
    )
    for bucket in board.aging:
        yield (
            "task aging",
            f"{bucket['bucket']} days",
            str(board.aging_day or ""),
            bucket["items"],
            "",
            "",
            "",
        )
    for agent in board.productivity:
        yield (
            "productivity",
            agent["agent"],
            period,
            agent["attempts"],
            agent["hours"],
            _fmt(agent["per_hour"], 2),
            f"closures={agent['closures']}",
        )
    for measure in board.quality:
        yield (
            "quality now",
            f"{measure['measure_code']} {measure['period_year']}",
            str(board.quality_day or ""),
            measure["numerator"],
            measure["denominator"],
            _fmt(measure["now"].value),
            "inverse" if measure["inverse"] else "",
        )
        yield (
            "quality projected",
            f"{measure['measure_code']} {measure['period_year']}",
            str(board.quality_day or ""),
            measure["projected"].numerator,
            measure["denominator"],
            _fmt(measure["projected"].value),
            f"scheduled={measure['scheduled']}",
        )


COLUMNS = ("section", "name", "period", "numerator_or_count", "denominator", "value", "note")


def dashboard_csv(board: Dashboard) -> Iterator[str]:
    return csv_lines(COLUMNS, dashboard_rows(board))


def chart_data(board: Dashboard) -> dict:
    return {
        "funnel": {
            "labels": [step["label"] for step in board.funnel],
            "values": [step["count"] for step in board.funnel],
        },
        "trend": {
            "labels": [m.strftime("%Y-%m") for m in board.months],
            "series": [
                {
                    "label": rate.label,
                    "values": [
                        None if v is None else round(100 * v, 1) for v in board.trend[rate.key]
                    ],
                }
                for rate in RATES
            ],
        },
        "aging": {
            "labels": [b["bucket"] for b in board.aging],
            "values": [b["items"] for b in board.aging],
        },
        "quality": {
            "labels": [f"{q['measure_code']} {q['period_year']}" for q in board.quality],
            "now": [
                None if q["now"].value is None else round(100 * q["now"].value, 1)
                for q in board.quality
            ],
            "projected": [
                None if q["projected"].value is None else round(100 * q["projected"].value, 1)
                for q in board.quality
            ],
        },
    }
