"""django-q2 entry points."""

from metrics import snapshots


def take_nightly_snapshot() -> dict:
    """Nightly: yesterday's events and today's standing counts, as set-based SQL."""
    return snapshots.take_snapshot()
