"""FHIR date/dateTime/Period/Age/Range to the interval columns of ClinicalRecord.

A day-level measure test compares the calendar date *as written in the value's own offset*, an
instant test compares true instants and treats a less precise value equal to the bound as
unknown. So each parsed value keeps three things: the UTC instant, the local date, the precision.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache
from typing import NamedTuple

from patients.clinical import Precision

_DATETIME = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


# Plain ints, not the IntegerChoices members: rows go to the database without a model field
# converting them (psycopg would write an Enum by its name).
NONE, YEAR, MONTH, DAY, MINUTE, SECOND, MILLISECOND = (int(p) for p in Precision)


class TimingError(ValueError):
    """An impossible or unparseable date; the message names the value."""


class Point(NamedTuple):  # immutable, so parsed values can be shared from the cache below
    at: dt.datetime  # aware, UTC
    local_date: dt.date
    precision: int
    # For partial dates (YYYY, YYYY-MM) the last day they cover: an interval *end* uses it.
    last_date: dt.date


def parse_datetime(value: str) -> Point:
    if not isinstance(value, str):
        raise _not_a_string(value)
    return _parse(value)


def _not_a_string(value: object) -> TimingError:
    return TimingError(f"{value!r} is not a date or dateTime string")


# An import reads the same dates over and over (visit days, birth dates): parse each once.
@lru_cache(maxsize=1 << 16)
def _parse(value: str) -> Point:
    match = _DATETIME.match(value.strip())
    if not match:
        raise TimingError(f"{value!r} is not a valid FHIR date or dateTime")
    parts = match.groupdict()
    year = int(parts["y"])
    try:
        if parts["m"] is None:
            first = dt.date(year, 1, 1)
            return Point(_midnight(first), first, YEAR, dt.date(year, 12, 31))
        month = int(parts["m"])
        if parts["d"] is None:
            first = dt.date(year, month, 1)
            last = dt.date(year, month, calendar.monthrange(year, month)[1])
            return Point(_midnight(first), first, MONTH, last)
        day = dt.date(year, month, int(parts["d"]))
        if parts["H"] is None:
            return Point(_midnight(day), day, DAY, day)
        tz = dt.UTC
        if parts["tz"] and parts["tz"] != "Z":
            sign = 1 if parts["tz"][0] == "+" else -1
            hours, minutes = int(parts["tz"][1:3]), int(parts["tz"][4:6])
            tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
        fraction = parts["f"]
        micro = int((fraction + "000000")[:6]) if fraction else 0
        local = dt.datetime(
            year,
            month,
            day.day,
            int(parts["H"]),
            int(parts["M"]),
            int(parts["S"] or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError as error:
        raise TimingError(f"{value!r} is not a real date ({error})") from None
    try:
        at = local.astimezone(dt.UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59-12:00 is past the last representable instant
        raise TimingError(f"{value!r} is out of range (years 1 to 9999 in UTC)") from None
    if fraction:
        precision = MILLISECOND
    elif parts["S"] is not None:
        precision = SECOND
    else:
        precision = MINUTE
    return Point(at, local.date(), precision, local.date())


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def add_years(day: dt.date, years: int) -> dt.date:
    """Year arithmetic as CQL does it: Feb 29 plus a year lands on Feb 28."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


class Interval(NamedTuple):
    """Columns for ClinicalRecord: start/end may be None; end_open means +infinity. Immutable,
    so the intervals of repeated date strings are shared from the caches below."""

    has_timing: bool
    start: Point | None
    end: Point | None
    end_open: bool
    # (has_timing, start_at, start_date, start_precision, end_at, end_date, end_precision,
    # end_open): the record's timing columns, in ClinicalRecord's order.
    columns: tuple
    # repr(columns) without its parentheses, for the record's digest: spelling instants and
    # dates is slow (~1 us each), a cached interval spells them once.
    spelled: str


def interval(
    has_timing: bool, start: Point | None = None, end: Point | None = None, end_open=False
) -> Interval:
    start_columns = start[:3] if start is not None else (None, None, NONE)
    end_columns = end[:3] if end is not None else (None, None, NONE)
    columns = (has_timing, *start_columns, *end_columns, end_open)
    return Interval(has_timing, start, end, end_open, columns, repr(columns)[1:-1])


NO_TIMING = interval(False)


def point_interval(value: str) -> Interval:
    if not isinstance(value, str):
        raise _not_a_string(value)
    return _point_interval(value)  # the same dates over and over: cached


@lru_cache(maxsize=1 << 14)
def _point_interval(value: str) -> Interval:
    point = parse_datetime(value)
    end = Point(point.at, point.last_date, point.precision, point.last_date)
    return interval(True, point, end, False)


def period_interval(period: dict) -> Interval:
    if not isinstance(period, dict):
        raise TimingError("a Period must be an object with start/end")
    start, end = period.get("start"), period.get("end")
    if (start is None or type(start) is str) and (end is None or type(end) is str):
        return _period_interval(start, end)  # the same visit days over and over: cached
    return _period_interval.__wrapped__(start, end)


@lru_cache(maxsize=1 << 14)
def _period_interval(start, end) -> Interval:
    start = parse_datetime(start) if start else None
    end = parse_datetime(end) if end else None
    if end is not None:
        end = Point(end.at, end.last_date, end.precision, end.last_date)
    if start is None and end is None:
        return NO_TIMING
    return interval(True, start, end, end_open=end is None)


MAX_AGE_YEARS = 150


def _age_years(quantity: dict) -> int:
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        raise TimingError("an Age needs a value")
    unit = quantity.get("code") or quantity.get("unit") or "a"
    if unit not in {"a", "yr", "year", "years"}:
        raise TimingError(f"Age unit {unit!r} is not supported (use years, 'a')")
    value = quantity["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TimingError(f"an Age value must be a number, not {value!r}")
    if not 0 <= value <= MAX_AGE_YEARS:
        raise TimingError(f"an Age of {value:g} years is not plausible")
    return int(value)


def _day_point(day: dt.date) -> Point:
    return Point(_midnight(day), day, DAY, day)


def age_interval(low: int, high: int, birth_date: dt.date | None) -> Interval:
    """From the birthday at `low` until the day before the birthday at `high + 1`."""
    if birth_date is None:
        return NO_TIMING
    try:
        start = add_years(birth_date, low)
        end = add_years(birth_date, high + 1) - dt.timedelta(days=1)
    except (ValueError, OverflowError):
        raise TimingError(
            f"ages {low} to {high} from a birth in {birth_date.year} fall past the year 9999"
        ) from None
    return interval(True, _day_point(start), _day_point(end), False)


# The keys of `<stem>[x]`, spelled once.
_CHOICES = {
    stem: tuple(f"{stem}{kind}" for kind in ("DateTime", "Instant", "Period", "Age", "Range"))
    for stem in ("onset", "abatement", "effective", "performed", "occurrence")
}


def choice_interval(resource: dict, stem: str, birth_date: dt.date | None) -> Interval:
    """Read `<stem>DateTime|Period|Age|Range|String|Instant` of a resource."""
    date_time, instant, period, age, range_key = _CHOICES[stem]
    if date_time in resource:
        return point_interval(resource[date_time])
    if instant in resource:
        return point_interval(resource[instant])
    if period in resource:
        return period_interval(resource[period])
    if age in resource:
        years = _age_years(resource[age])
        return age_interval(years, years, birth_date)
    if range_key in resource:
        range_ = resource[range_key] or {}
        low = _age_years(range_.get("low") or {})
        high = _age_years(range_.get("high") or {})
        return age_interval(low, high, birth_date)
    # onsetString, occurrenceString, abatementBoolean...: no computable timing.
    return NO_TIMING
