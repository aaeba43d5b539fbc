"""Scoped reads of worklists: every list starts from the user's organizations.

Each selector answers in a fixed number of queries whatever the number of rows (counts are
conditional aggregates in one query, rows are joined, never fetched one by one).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.apps import apps
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from gaps.care_gaps import OPEN_STATES, CareGap
from gaps.selectors import engine_results
from patients.models import Patient
from patients.selectors import organizations_for, patient_for
from worklists.models import PatientRisk, Queue, Team, WorkItem

# Aging buckets a supervisor plans by: (label, lowest age in days, highest or None).
AGING_BUCKETS = (
    ("0-2 days", 0, 2),
    ("3-7 days", 3, 7),
    ("8-14 days", 8, 14),
    ("15-30 days", 15, 30),
    ("30+ days", 31, None),
)


def _granted(user) -> QuerySet:
    return organizations_for(user).values("pk")


def work_items_for(user) -> QuerySet[WorkItem]:
    return WorkItem.objects.filter(organization__in=_granted(user)).select_related(
        "patient", "queue", "owner", "gap"
    )


def queues_for(user) -> QuerySet[Queue]:
    return Queue.objects.filter(organization__in=_granted(user)).select_related(
        "organization", "team"
    )


def teams_for(user) -> QuerySet[Team]:
    return Team.objects.filter(organization__in=_granted(user)).select_related("organization")


def my_open_work(user) -> QuerySet[WorkItem]:
    return work_items_for(user).open().filter(owner=user).by_priority()


def my_counts(user, *, today: dt.date | None = None) -> dict[str, int]:
    """Claimed, due today and overdue: one aggregate query over the user's own open items."""
    today = today or timezone.localdate()
    return (
        WorkItem.objects.open()
        .filter(owner=user)
        .aggregate(
            claimed=Count("pk"),
            due_today=Count("pk", filter=Q(due_date=today)),
            overdue=Count("pk", filter=Q(due_date__lt=today)),
        )
    )


def waiting_in_my_queues(user, queue_ids: list[int], *, cap: int = 500) -> int:
    """Unassigned items the user could take, counted up to `cap` (never a full table count)."""
    if not queue_ids:
        return 0
    return (
        WorkItem.objects.open().unassigned().filter(queue_id__in=queue_ids).values("pk")[:cap]
    ).count()


def aging_filter(label: str, *, today: dt.date, prefix: str = "") -> Q:
    """Items created `low` to `high` whole days before today (the bucket named `label`)."""
    for name, low, high in AGING_BUCKETS:
        if name != label:
            continue
        condition = Q()
        if low:
            newest = dt.datetime.combine(today - dt.timedelta(days=low - 1), dt.time.min, dt.UTC)
            condition &= Q(**{f"{prefix}created_at__lt": newest})
        if high is not None:
            oldest = dt.datetime.combine(today - dt.timedelta(days=high), dt.time.min, dt.UTC)
            condition &= Q(**{f"{prefix}created_at__gte": oldest})
        return condition
    raise ValueError(f"Unknown aging bucket {label!r}")


def queue_overview(user, *, now: dt.datetime | None = None) -> list[Queue]:
    """Every queue of the user's organizations with open, unassigned, per-bucket and SLA-breach
    counts of its open items: one grouped query."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    open_items = Q(items__state="open")
    annotations = {
        "open_count": Count("items", filter=open_items),
        "unassigned_count": Count("items", filter=open_items & Q(items__owner__isnull=True)),
        "breached_count": Count("items", filter=open_items & Q(items__sla_due_at__lt=now)),
    }
    for index, (label, _, _) in enumerate(AGING_BUCKETS):
        bucket = aging_filter(label, today=today, prefix="items__")
        annotations[f"bucket_{index}"] = Count("items", filter=open_items & bucket)
    queues = list(queues_for(user).annotate(**annotations).order_by("organization__name", "name"))
    for queue in queues:
        queue.buckets = [
            (label, getattr(queue, f"bucket_{index}"))
            for index, (label, _, _) in enumerate(AGING_BUCKETS)
        ]
    return queues


@dataclass
class Case:
    patient: Patient
    risk: PatientRisk | None
    items: list[WorkItem]
    gaps: list[CareGap]
    attempts: list
    appointments: list


def case_for(user, patient_id) -> Case:
    """One patient as an agent works them: open work, open gaps with evidence and the engine's
    result, recent attempts and appointments (when outreach is installed). Patient.DoesNotExist
    for a patient outside the user's organizations."""
    patient = patient_for(user, patient_id)
    items = list(
        WorkItem.objects.open()
        .filter(patient_id=patient.pk)
        .select_related("queue", "owner", "gap")
        .by_priority()
    )
    gaps = list(
        CareGap.objects.filter(patient_id=patient.pk, state__in=OPEN_STATES)
        .select_related("measure", "owner")
        .prefetch_related("evidence")
        .order_by("next_step_due", "id")
    )
    results = engine_results(gaps)
    for gap in gaps:
        gap.engine_result = results.get(gap.pk)
    attempts, appointments = [], []
    if apps.is_installed("outreach"):
        attempt_model = apps.get_model("outreach", "OutreachAttempt")
        appointment_model = apps.get_model("outreach", "Appointment")
        attempts = list(
            attempt_model.objects.filter(patient_id=patient.pk)
            .select_related("actor")
            .order_by("-planned_at", "-id")[:10]
        )
        appointments = list(
            appointment_model.objects.filter(patient_id=patient.pk)
            .select_related("site")
            .order_by("-starts_at", "-id")[:5]
        )
    risk = PatientRisk.objects.filter(patient_id=patient.pk).first()
    return Case(patient, risk, items, gaps, attempts, appointments)


def assignable_users(user) -> QuerySet:
    """People who work at least one queue of the user's organizations (assignment targets)."""
    from django.contrib.auth import get_user_model
    from guardian.models import UserObjectPermission

    queue_ids = [str(pk) for pk in queues_for(user).values_list("pk", flat=True)]
    workers = UserObjectPermission.objects.filter(
        permission__codename="work_queue",
        permission__content_type__app_label="worklists",
        object_pk__in=queue_ids,
    ).values("user_id")
    return get_user_model().objects.filter(pk__in=workers, is_active=True).order_by("username")
