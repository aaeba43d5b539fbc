"""Idempotent setup after migrate: the schedule that seals new audit rows into the hash chain."""

from __future__ import annotations

import datetime as dt

SEAL_NAME = "audit: seal new history and access-log rows"
SEAL_FUNC = "audit.tasks.seal_audit_rows"
SEAL_EVERY_MINUTES = 15


def ensure_seal_schedule(schedule_model=None) -> None:
    if schedule_model is None:
        from django_q.models import Schedule as schedule_model
    from django.utils import timezone

    if schedule_model.objects.filter(name=SEAL_NAME).exists():
        return
    schedule_model.objects.create(
        name=SEAL_NAME,
        func=SEAL_FUNC,
        schedule_type="I",  # every `minutes`
        minutes=SEAL_EVERY_MINUTES,
        next_run=timezone.now() + dt.timedelta(minutes=SEAL_EVERY_MINUTES),
        repeats=-1,
    )


def sync_after_migrate(sender=None, using="default", **kwargs) -> None:
    from django.db import connections

    if "django_q_schedule" in connections[using].introspection.table_names():
        ensure_seal_schedule()
