"""Idempotent setup after migrate: the measure catalogue rows and the nightly schedule."""

from __future__ import annotations

import datetime as dt

NIGHTLY_NAME = "gaps: nightly measure evaluation"
NIGHTLY_FUNC = "gaps.tasks.evaluate_all_organizations"
STALE_NAME = "gaps: completed gaps without documentation (14-day rule)"
STALE_FUNC = "gaps.tasks.flag_stale_completions"
# Daily, UTC (DAILY schedules: croniter is not needed). The evaluation runs after the nightly
# imports; the 14-day rule after the evaluation, so gaps the engine closed are not flagged.
DAILY = {NIGHTLY_NAME: (NIGHTLY_FUNC, dt.time(2, 30)), STALE_NAME: (STALE_FUNC, dt.time(4, 0))}


def ensure_nightly_schedule(schedule_model=None) -> None:
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    from django.utils import timezone

    now = timezone.now()
    for name, (func, at) in DAILY.items():
        if schedule_model.objects.filter(name=name).exists():
            continue
        first = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
        if first <= now:
            first += dt.timedelta(days=1)
        schedule_model.objects.create(
            name=name, func=func, schedule_type="D", next_run=first, repeats=-1
        )


def sync_after_migrate(sender=None, using="default", **kwargs) -> None:
    from django.db import connections

    tables = connections[using].introspection.table_names()
    if "django_q_schedule" in tables:
        ensure_nightly_schedule()
    if "gaps_measure" in tables:
        from gaps.services import sync_catalogue

        sync_catalogue()
