"""The outreach schedules, created once after every migrate (idempotent, by name).

No catch-up storm: django-q2 runs a missed schedule once (`catch_up` is off), and each sweep is
bounded per run and idempotent. The sweeps only plan; sends happen inside allowed hours because
every attempt carries its earliest send time and the claim re-checks the policy.
"""

from __future__ import annotations

import datetime as dt

SCHEDULES = {
    # name: (function, schedule type, minutes between runs or None, first run at UTC time or None)
    "outreach: outbox (send due attempts, expire stale sends)": (
        "outreach.tasks.outbox_tick",
        "I",
        1,
        None,
    ),
    "outreach: appointment reminders, no-show recovery, check-ins": (
        "outreach.tasks.reminders_tick",
        "I",
        15,
        None,
    ),
    "outreach: gap sequence": ("outreach.tasks.gap_sequence_tick", "H", None, None),
    # After the nightly evaluation (02:30) and the 14-day rule (04:00).
    "outreach: dormant patients": ("outreach.tasks.dormant_sweep", "D", None, dt.time(5, 0)),
}


def ensure_schedules(schedule_model=None) -> None:
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    from django.utils import timezone

    now = timezone.now()
    for name, (func, kind, minutes, at) in SCHEDULES.items():
        if schedule_model.objects.filter(name=name).exists():
            continue
        first = now
        if at is not None:
            first = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
            if first <= now:
                first += dt.timedelta(days=1)
        schedule_model.objects.create(
            name=name,
            func=func,
            schedule_type=kind,
            minutes=minutes,
            next_run=first,
            repeats=-1,
        )


def sync_after_migrate(sender=None, using="default", **kwargs) -> None:
    from django.db import connections

    if "django_q_schedule" in connections[using].introspection.table_names():
        ensure_schedules()
