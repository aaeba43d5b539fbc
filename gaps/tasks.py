"""django-q2 entry points."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from carehub.history import get_system_user
from gaps.services import evaluate_measures
from patients.models import Organization


def evaluate_all_organizations() -> dict:
    """Nightly: every active organization, the current calendar year, as the system user."""
    today = timezone.now().date()
    start, end = dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)
    actor = get_system_user()
    done = {}
    for organization in Organization.objects.filter(is_active=True):
        summary = evaluate_measures(organization, period_start=start, period_end=end, actor=actor)
        done[organization.slug] = summary.run.pk
    return done


def flag_stale_completions() -> int:
    """Daily: completed gaps still without documentation after 14 days (as the system user)."""
    from gaps import sync

    return sync.flag_stale_completions()
