"""Demo: a first metrics snapshot, so the dashboard of a fresh `make run` has figures."""

import datetime as dt

from django.utils import timezone

from metrics import snapshots

# The demo's logged calls and appointments are spread over the days before the seed.
DEMO_EVENT_DAYS = 14


def seed_demo_metrics() -> dict:
    # Gap changes happened today; calls and appointments over the last two weeks: count each of
    # those days' events, then today's standing figures and events, as the nightly run would have.
    today = timezone.now().date()
    for days_back in range(DEMO_EVENT_DAYS, 0, -1):
        snapshots.snapshot_events(today - dt.timedelta(days=days_back))
    return snapshots.take_snapshot(today, events_day=today)
