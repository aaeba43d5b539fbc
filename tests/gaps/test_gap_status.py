import datetime as dt

import pytest

from gaps.services import gap_status

END = dt.date(2025, 12, 31)


@pytest.mark.parametrize(
    ("status", "today", "expected"),
    [
        ("open", dt.date(2026, 1, 5), "open-gap"),
        ("open", dt.date(2025, 6, 1), "prospective-gap"),  # still time inside the period
        ("closed", dt.date(2025, 6, 1), "closed-gap"),
        ("not-applicable", dt.date(2026, 1, 5), "not-applicable"),
        ("excluded", dt.date(2026, 1, 5), "not-applicable"),
    ],
)
def test_deqm_gap_status(status, today, expected):
    assert gap_status(status, END, today) == expected


def test_excluded_patients_can_be_reported_as_closed_gaps(settings):
    settings.CAREHUB_DEQM_EXCLUDED_AS = "closed-gap"
    assert gap_status("excluded", END, dt.date(2026, 1, 5)) == "closed-gap"
