"""django-q2 entry points."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from carehub.history import get_system_user
from gaps import services
from patients.models import Organization


def evaluate_all_organizations() -> dict:
    """Nightly: every active organization, the current calendar year, as the system user. Each
    organization's evaluation is split into chunk tasks (`evaluate_chunk`) that every running
    qcluster takes from the queue; returns the run id per organization."""
    today = timezone.now().date()
    start, end = dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)
    actor = get_system_user()
    started = {}
    for organization in Organization.objects.filter(is_active=True):
        run = services.start_sharded_evaluation(
            organization, period_start=start, period_end=end, actor=actor
        )
        started[organization.slug] = run.pk
    return started


def evaluate_chunk(chunk_id: int) -> bool:
    """One chunk of a sharded evaluation (ids only in the task: no PHI on the queue).
    Idempotent: a redelivered or duplicated task finds the chunk done and returns False."""
    return services.evaluate_chunk(chunk_id, actor=get_system_user())


def flag_stale_completions() -> int:
    """Daily: completed gaps still without documentation after 14 days (as the system user)."""
    from gaps import sync

    return sync.flag_stale_completions()
