"""Idempotent setup after migrate: the measure catalogue rows and the nightly schedule."""

from __future__ import annotations

NIGHTLY_NAME = "gaps: nightly measure evaluation"
NIGHTLY_FUNC = "gaps.tasks.evaluate_all_organizations"


def ensure_nightly_schedule(schedule_model=None) -> None:
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    if schedule_model.objects.filter(name=NIGHTLY_NAME).exists():
        return
    import datetime as dt

    from django.utils import timezone

    # Daily at 02:30 UTC, after the nightly imports (a DAILY schedule: croniter is not needed).
    now = timezone.now()
    first = now.replace(hour=2, minute=30, second=0, microsecond=0)
    if first <= now:
        first += dt.timedelta(days=1)
    schedule_model.objects.create(
        name=NIGHTLY_NAME,
        func=NIGHTLY_FUNC,
        schedule_type="D",
        next_run=first,
        repeats=-1,
    )


def sync_after_migrate(sender=None, using="default", **kwargs) -> None:
    from django.db import connections

    tables = connections[using].introspection.table_names()
    if "django_q_schedule" in tables:
        ensure_nightly_schedule()
    if "gaps_measure" in tables:
        from gaps.services import sync_catalogue

        sync_catalogue()
