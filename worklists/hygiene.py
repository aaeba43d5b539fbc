"""Work of measurement periods that have ended leaves the working lists.

A gap of a period that has ended can no longer close unless its service already happened inside
the period (completed, or a visit booked on a day inside it): claims lag, so such gaps keep their
documentation work. Every other open gap of an ended period stops producing work: its open items
are cancelled with the reason, visible to supervisors in the work item's history and list. The gap
itself keeps its state (the gap list shows "period ended"); nothing is deleted.

Evaluating a past year creates no agent work (see services.reconcile_gap_items); a supervisor who
wants it anyway asks for it with `open_work_for_period`.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from carehub.errors import DomainError, NotAllowed
from carehub.history import bulk_update_with_history, get_system_user
from carehub.permissions import require_organization_access
from gaps.care_gaps import OPEN_STATES, CareGap
from worklists.models import WorkItem
from worklists.services import reconcile_gap_items


def ended_reason(period_end: dt.date) -> str:
    return f"Measurement period ended {period_end.isoformat()}: the gap can no longer close"


@transaction.atomic
def retire_ended_period_work(*, today: dt.date | None = None, actor=None) -> int:
    """Cancel open work of gaps of ended periods that can no longer close; the number cancelled."""
    actor = actor or get_system_user()
    today = today or timezone.localdate()
    now = timezone.now()
    stale_gaps = CareGap.objects.period_ended(today).values("pk")
    items = list(
        WorkItem.objects.select_for_update()
        .filter(state="open", gap__in=stale_gaps)
        .select_related("gap")
    )
    by_reason: dict[str, list[WorkItem]] = {}
    for item in items:
        if timezone.localdate(item.created_at) > item.gap.period_end:
            continue  # opened after the period ended, on request or by a person: kept
        item.state, item.closed_at, item.closed_by = WorkItem.State.CANCELLED, now, actor
        item.resolution = ended_reason(item.gap.period_end)
        by_reason.setdefault(item.resolution, []).append(item)
    for reason, batch in by_reason.items():
        bulk_update_with_history(
            batch, ["state", "closed_at", "closed_by", "resolution"], actor=actor, reason=reason
        )
    return sum(len(batch) for batch in by_reason.values())


@transaction.atomic
def open_work_for_period(organization, *, period_end: dt.date, actor, reason: str) -> int:
    """A supervisor asks for agent work on an ended (or any) period's open gaps."""
    require_organization_access(actor, organization.pk, what="this organization")
    if not (actor.is_system or actor.has_perm("worklists.assign_workitem")):
        raise NotAllowed("Only supervisors open work for a past period")
    if not (reason or "").strip():
        raise DomainError("Say why this period's gaps should be worked")
    gap_ids = list(
        CareGap.objects.filter(
            organization=organization, period_end=period_end, state__in=OPEN_STATES
        ).values_list("pk", flat=True)
    )
    opened, _ = reconcile_gap_items(
        gap_ids, actor=actor, reason=reason.strip(), include_ended_periods=True
    )
    return opened
