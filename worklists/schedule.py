"""django-q2 schedules of worklists, created once after migrate (idempotent)."""

from __future__ import annotations

import datetime as dt

RELEASE_NAME = "worklists: idle claims back to their queues"
RELEASE_FUNC = "worklists.tasks.release_idle_claims"
RISK_NAME = "worklists: nightly risk tiers"
RISK_FUNC = "worklists.tasks.recompute_risk_tiers"
ENDED_NAME = "worklists: work of ended measurement periods leaves the lists"
ENDED_FUNC = "worklists.tasks.retire_ended_period_work"
# Every 5 minutes: a claim is released between 30 and 35 minutes after its last activity.
RELEASE_EVERY_MINUTES = 5
# After the nightly evaluation (02:30) and before the 14-day rule (04:00), UTC.
DAILY = {RISK_NAME: (RISK_FUNC, dt.time(3, 15)), ENDED_NAME: (ENDED_FUNC, dt.time(3, 45))}


def ensure_schedules(sender=None, using="default", **kwargs) -> None:
    from django.db import connections

    if "django_q_schedule" not in connections[using].introspection.table_names():
        return
    from django.utils import timezone
    from django_q.models import Schedule

    now = timezone.now()
    if not Schedule.objects.filter(name=RELEASE_NAME).exists():
        Schedule.objects.create(
            name=RELEASE_NAME,
            func=RELEASE_FUNC,
            schedule_type=Schedule.MINUTES,
            minutes=RELEASE_EVERY_MINUTES,
            next_run=now,
            repeats=-1,
        )
    for name, (func, at) in DAILY.items():
        if Schedule.objects.filter(name=name).exists():
            continue
        first = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
        if first <= now:
            first += dt.timedelta(days=1)
        Schedule.objects.create(
            name=name, func=func, schedule_type=Schedule.DAILY, next_run=first, repeats=-1
        )
