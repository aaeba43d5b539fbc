"""Idempotent setup after migrate: the nightly metrics snapshot."""

from __future__ import annotations

import datetime as dt

SNAPSHOT_NAME = "metrics: nightly snapshot"
SNAPSHOT_FUNC = "metrics.tasks.take_nightly_snapshot"
# After the nightly evaluation (02:30) and the 14-day rule (04:00): yesterday is complete.
SNAPSHOT_AT = dt.time(4, 30)


def ensure_snapshot_schedule(schedule_model=None) -> None:
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    from django.utils import timezone

    if schedule_model.objects.filter(name=SNAPSHOT_NAME).exists():
        return
    now = timezone.now()
    first = now.replace(hour=SNAPSHOT_AT.hour, minute=SNAPSHOT_AT.minute, second=0, microsecond=0)
    if first <= now:
        first += dt.timedelta(days=1)
    schedule_model.objects.create(
        name=SNAPSHOT_NAME, func=SNAPSHOT_FUNC, schedule_type="D", next_run=first, repeats=-1
    )


def sync_after_migrate(sender=None, using="default", **kwargs) -> None:
    from django.db import connections

    if "django_q_schedule" in connections[using].introspection.table_names():
        ensure_snapshot_schedule()
