"""Demo: a first metrics snapshot, so the dashboard of a fresh `make run` has figures."""

from django.utils import timezone

from metrics import snapshots


def seed_demo_metrics() -> dict:
    # The demo's whole history happened today, so today's events are the ones to count.
    today = timezone.now().date()
    return snapshots.take_snapshot(today, events_day=today)
