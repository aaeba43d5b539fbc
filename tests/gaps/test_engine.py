"""Engine mechanics: version choice, set-based query count, comparison semantics, schedule."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule

from gaps.engine.criteria import le_instant
from gaps.measures import UnknownMeasure, oids, pick_version
from gaps.schedule import NIGHTLY_NAME, ensure_nightly_schedule
from gaps.services import evaluate_measures
from patients.clinical import Precision
from patients.fhir.timing import parse_datetime
from tests.gaps.conftest import BundleBuilder, evaluate_one, needs_shared

MP_END = dt.datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)


def point(text):
    parsed = parse_datetime(text)
    return (parsed.at, parsed.local_date, parsed.precision)


def test_the_measurement_year_picks_the_version():
    assert pick_version("CMS130", 2025)[0].version == "MP2025"
    assert pick_version("CMS130", 2027)[0].version == "MP2026"
    assert pick_version("CMS130", 2025, "MP2026")[0].version == "MP2026"
    definition, warning = pick_version("CMS130", 2019)
    assert definition.version == "MP2025" and "earliest" in warning
    with pytest.raises(UnknownMeasure):
        pick_version("CMS999", 2025)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-12-31T23:59:59.999Z", True),
        ("2025-12-31T23:59:59Z", False),  # second precision, equal at that precision: unknown
        ("2025-12-31", False),  # date-only equal to the bound's date: unknown
        ("2025-12-30", True),
        ("2025-12-31T23:00:00.000-05:00", False),
        ("2026-01-01T02:00:00.000+05:00", True),  # 2025-12-31T21:00Z
    ],
)
def test_instant_comparisons_follow_the_precision_rule(value, expected):
    assert le_instant(point(value), MP_END) is expected


def test_local_dates_are_kept_as_written():
    parsed = parse_datetime("2025-12-31T22:00:00-05:00")
    assert parsed.local_date == dt.date(2025, 12, 31)
    assert parsed.at.date() == dt.date(2026, 1, 1)
    assert parsed.precision == Precision.SECOND


def test_the_nightly_schedule_exists_once(db):
    # post_migrate created it when the test database was migrated; running again adds nothing.
    ensure_nightly_schedule()
    assert Schedule.objects.filter(name=NIGHTLY_NAME).count() == 1
    assert Schedule.objects.get(name=NIGHTLY_NAME).func == "gaps.tasks.evaluate_all_organizations"


@needs_shared
@pytest.mark.django_db
def test_evaluation_is_set_based(org_a, system_user, valuesets_2024):
    def queries_for(count):
        for _ in range(count):
            builder = BundleBuilder(birth_date="1960-01-01")
            builder.encounter(oids.OFFICE_VISIT, "2025-03-03T09:00:00Z")
            builder.lab(oids.FOBT, "2025-04-01", value={"valueString": "negative"})
            evaluate_one(builder, org_a, system_user, "CMS130", 2025)
        with CaptureQueriesContext(connection) as captured:
            evaluate_measures(
                org_a,
                period_start=dt.date(2025, 1, 1),
                period_end=dt.date(2025, 12, 31),
                actor=system_user,
                measures=["CMS130"],
            )
        return len(captured)

    assert queries_for(1) == queries_for(20)
