"""Work items: opened and closed by what causes them, claimed, assigned and released.

State machine of a work item:

    open (unassigned) --get_next / claim_patient--> open (claimed by an agent)
    open (claimed)    --idle 30 minutes------------> open (unassigned)      release_idle_claims
    open (any)        --assign_items---------------> open (assigned to a named user)
    open              --the cause is resolved------> done                    reconcile_gap_items,
    open              --the cause went away--------> cancelled               close_item, ...

Gap work follows the gap's workflow state (see `WANTED`): each open gap has exactly one open item
of the kind its state calls for; a transition closes the item that is finished and opens the
next, in the transition's own transaction (carehub.events). The next item keeps the previous
item's owner when that person works the next queue, so one agent carries a patient through.

One patient's items are worked together: claiming one claims the patient's other unassigned
items in the queues the agent works, and the case page shows all of them.

Priority is risk tier, then due date, then measure weight (never alphabetical); get-next reads the
partial index `workitem_next` in that order with `SELECT … FOR UPDATE SKIP LOCKED`, so 50 agents
pressing the button at once never get the same item and never wait on each other.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from carehub.errors import Conflict, DomainError, NotAllowed
from carehub.history import (
    bulk_create_with_history,
    bulk_update_with_history,
    get_system_user,
    save_with_history,
)
from carehub.permissions import require_organization_access
from gaps.care_gaps import CareGap, GapState
from worklists.models import (
    RISK_RANK,
    UNASSESSED_RANK,
    ItemKind,
    PatientRisk,
    Queue,
    WorkItem,
)
from worklists.queues import ensure_default_queues, workable_queue_ids, workable_queues

K = ItemKind
S = GapState

# A claim nobody touched for this long goes back to its queue.
CLAIM_IDLE_MINUTES = 30

# Service level: hours from when an item becomes workable (creation, or the first day it may be
# worked) until it is breached. Callbacks: one business day; no-shows: recovery within 24 h.
SLA_HOURS = {
    K.REVIEW_GAP: 48,
    K.OUTREACH_CALL: 72,
    K.SCHEDULE: 24,
    K.CONFIRM_COMPLETION: 24,
    K.CONFIRM_CLOSURE: 14 * 24,
    K.CALL_BACK: 24,
    K.NO_SHOW_RECOVERY: 24,
    K.POST_PROCEDURE: 72,
    K.COORDINATOR_REVIEW: 48,
}

# The item each open gap state calls for, and the kinds that already answer it (an outreach gap
# being recovered from a no-show keeps its recovery item rather than a plain outreach call).
WANTED = {
    S.IDENTIFIED: (K.REVIEW_GAP, {K.REVIEW_GAP}),
    S.IN_REVIEW: (K.REVIEW_GAP, {K.REVIEW_GAP}),
    S.VALIDATED: (K.OUTREACH_CALL, {K.OUTREACH_CALL, K.SCHEDULE}),
    S.OUTREACH: (K.OUTREACH_CALL, {K.OUTREACH_CALL, K.SCHEDULE, K.NO_SHOW_RECOVERY}),
    S.SCHEDULED: (K.CONFIRM_COMPLETION, {K.CONFIRM_COMPLETION}),
    S.COMPLETED: (K.CONFIRM_CLOSURE, {K.CONFIRM_CLOSURE}),
    S.NEEDS_REVIEW: (K.COORDINATOR_REVIEW, {K.COORDINATOR_REVIEW}),
}
# Gap kinds: the ones reconcile_gap_items manages (call-backs and check-ins are outreach's).
GAP_KINDS = frozenset(k for kind, kinds in WANTED.values() for k in (kind, *kinds))

REASON_OF_KIND = {
    K.REVIEW_GAP: "Review the records: is the service already done elsewhere?",
    K.OUTREACH_CALL: "Reach the patient to book the service",
    K.CONFIRM_COMPLETION: "Visit booked: confirm the service happened",
    K.CONFIRM_CLOSURE: "Service done: obtain the result or documentation and close the gap",
    K.NO_SHOW_RECOVERY: "Missed appointment: offer a new one within 24 hours",
    K.COORDINATOR_REVIEW: "Flagged for coordinator review",
}


def _today() -> dt.date:
    return timezone.localdate()


def sla_deadline(kind: str, *, created_at: dt.datetime, not_before: dt.date | None) -> dt.datetime:
    start = created_at
    if not_before is not None:
        day_start = dt.datetime.combine(not_before, dt.time.min, tzinfo=dt.UTC)
        start = max(start, day_start)
    return start + dt.timedelta(hours=SLA_HOURS[kind])


def risk_ranks(patient_ids: Iterable[int]) -> dict[int, int]:
    tiers = PatientRisk.objects.filter(patient_id__in=list(patient_ids)).values_list(
        "patient_id", "tier"
    )
    return {patient_id: RISK_RANK[tier] for patient_id, tier in tiers}


def _wanted(gap: dict, previous_state: str | None) -> tuple[str, set[str]] | None:
    state = gap["state"]
    if state == S.COMPLETED and gap["needs_coordination"]:
        return K.COORDINATOR_REVIEW, {K.COORDINATOR_REVIEW}
    if state == S.OUTREACH and previous_state == S.SCHEDULED:
        return K.NO_SHOW_RECOVERY, {K.NO_SHOW_RECOVERY}
    return WANTED.get(state)


def _not_before(gap: dict, kind: str) -> dt.date | None:
    if kind == K.CONFIRM_COMPLETION:
        return gap["scheduled_for"]
    return None


def _close_state(actor) -> str:
    # A person finishing a step did the work; the engine or a rule making it moot cancels it.
    return WorkItem.State.CANCELLED if actor.is_system else WorkItem.State.DONE


@transaction.atomic
def reconcile_gap_items(
    gap_ids: Iterable[int],
    *,
    actor,
    reason: str = "",
    previous_states: dict[int, str] | None = None,
    include_ended_periods: bool = False,
) -> tuple[int, int]:
    """Make the open work of these gaps match their workflow states; (opened, closed).

    A gap whose measurement period has ended gets no *new* work unless `include_ended_periods`
    (a person acted on that very gap, or a supervisor asked for the period): evaluating last
    year must not fill today's worklists.
    """
    gap_ids = sorted(set(gap_ids))
    if not gap_ids:
        return 0, 0
    previous_states = previous_states or {}
    now, today = timezone.now(), _today()
    gaps = {
        row["pk"]: row
        for row in CareGap.objects.filter(pk__in=gap_ids).values(
            "pk",
            "organization_id",
            "patient_id",
            "state",
            "needs_coordination",
            "next_step_due",
            "scheduled_for",
            "measure_weight",
            "period_end",
            "due_date",
        )
    }
    open_items: dict[int, list[WorkItem]] = defaultdict(list)
    for item in WorkItem.objects.select_for_update().filter(gap_id__in=gap_ids, state="open"):
        open_items[item.gap_id].append(item)

    to_close: dict[tuple[str, str], list[WorkItem]] = defaultdict(list)
    to_refresh: list[WorkItem] = []
    to_open: list[tuple[dict, str, WorkItem | None]] = []
    for gap_id, gap in gaps.items():
        wanted = _wanted(gap, previous_states.get(gap_id))
        keep_kinds = wanted[1] if wanted else set()
        existing = open_items.get(gap_id, [])
        kept = [item for item in existing if item.kind in keep_kinds]
        finished = [item for item in existing if item.kind not in keep_kinds]
        for item in finished:
            item.state = _close_state(actor)
            item.closed_at, item.closed_by = now, actor
            item.resolution = (reason or f"Gap is now {gap['state']}")[:300]
            to_close[(item.state, item.resolution)].append(item)
        for item in kept:
            due = gap["next_step_due"] or item.due_date
            if item.due_date != due:
                item.due_date = due
                item.sla_due_at = sla_deadline(
                    item.kind, created_at=item.created_at, not_before=item.not_before
                )
                to_refresh.append(item)
        if wanted and not kept:
            if gap["period_end"] < today and not include_ended_periods:
                continue
            to_open.append((gap, wanted[0], finished[0] if finished else None))

    closed = 0
    for (_, resolution), batch in to_close.items():
        closed += bulk_update_with_history(
            batch, ["state", "closed_at", "closed_by", "resolution"], actor=actor, reason=resolution
        )
        _finish_follow_ups(batch, actor=actor, note=resolution)
    if to_refresh:
        bulk_update_with_history(
            to_refresh, ["due_date", "sla_due_at"], actor=actor, reason="Next step re-dated"
        )
    opened = _open_for_gaps(to_open, actor=actor, reason=reason, now=now)
    return opened, closed


def _open_for_gaps(
    wanted: list[tuple[dict, str, WorkItem | None]], *, actor, reason: str, now
) -> int:
    if not wanted:
        return 0
    ranks = risk_ranks(gap["patient_id"] for gap, _, _ in wanted)
    routes: dict[int, dict[str, Queue]] = {}
    items, owners = [], {}
    for gap, kind, previous in wanted:
        org = gap["organization_id"]
        if org not in routes:
            from patients.models import Organization

            routes[org] = ensure_default_queues(Organization(pk=org), actor=get_system_user())
        queue = routes[org][kind]
        not_before = _not_before(gap, kind)
        item = WorkItem(
            organization_id=org,
            queue=queue,
            kind=kind,
            patient_id=gap["patient_id"],
            gap_id=gap["pk"],
            reason=(reason if kind == K.COORDINATOR_REVIEW and reason else REASON_OF_KIND[kind])[
                :300
            ],
            risk_rank=ranks.get(gap["patient_id"], UNASSESSED_RANK),
            due_date=gap["next_step_due"] or gap["due_date"],
            measure_weight=gap["measure_weight"],
            not_before=not_before,
            sla_due_at=sla_deadline(kind, created_at=now, not_before=not_before),
            created_at=now,
        )
        carry = _carried_owner(previous, queue, now)
        if carry is not None:
            item.owner, item.assignment = carry
            item.claimed_at = item.last_activity_at = now
            owners[gap["pk"]] = carry[0]
        items.append(item)
    bulk_create_with_history(items, actor=actor, reason=(reason or "Work opened")[:100])
    return len(items)


def _carried_owner(previous: WorkItem | None, queue: Queue, now):
    """The person who finished the previous step keeps the patient, if they work the next queue."""
    if previous is None or previous.owner_id is None:
        return None
    owner = previous.owner
    if not workable_queues(owner).filter(pk=queue.pk).exists():
        return None
    return owner, previous.assignment or WorkItem.Assignment.CLAIMED


# -- items that are not a gap's workflow step (outreach follow-ups, escalations) -------------


@transaction.atomic
def open_item(
    patient,
    *,
    kind: str,
    actor,
    reason: str,
    due_date: dt.date | None = None,
    gap: CareGap | None = None,
    not_before: dt.date | None = None,
    appointment_ref: int | None = None,
    attempt_ref: int | None = None,
    follow_up_ref: int | None = None,
) -> WorkItem:
    """One work item about a patient; an open item of the same kind for the same gap or
    follow-up is returned instead of a second one (a retried event changes nothing)."""
    if kind not in K.values:
        raise DomainError(f"Unknown kind of work {kind!r}")
    require_organization_access(actor, patient.organization_id, what="this patient")
    reason = (reason or "").strip() or REASON_OF_KIND.get(kind, "")
    if not reason:
        raise DomainError("A work item needs a reason")
    existing = WorkItem.objects.select_for_update().filter(state="open", kind=kind)
    if gap is not None and existing.filter(gap=gap).exists():
        return existing.get(gap=gap)
    if follow_up_ref is not None and existing.filter(follow_up_ref=follow_up_ref).exists():
        return existing.filter(follow_up_ref=follow_up_ref).first()
    now = timezone.now()
    queue = ensure_default_queues(patient.organization, actor=get_system_user())[kind]
    item = WorkItem(
        organization_id=patient.organization_id,
        queue=queue,
        kind=kind,
        patient=patient,
        gap=gap,
        appointment_ref=appointment_ref,
        attempt_ref=attempt_ref,
        follow_up_ref=follow_up_ref,
        reason=reason[:300],
        risk_rank=risk_ranks([patient.pk]).get(patient.pk, UNASSESSED_RANK),
        due_date=due_date or _today(),
        measure_weight=gap.measure_weight if gap is not None else 1,
        not_before=not_before,
        sla_due_at=sla_deadline(kind, created_at=now, not_before=not_before),
        created_at=now,
    )
    return save_with_history(item, actor=actor, reason=reason[:100])


@transaction.atomic
def close_item(item: WorkItem, *, actor, resolution: str, cancelled: bool = False) -> WorkItem:
    item = WorkItem.objects.select_for_update().get(pk=item.pk)
    require_organization_access(actor, item.organization_id, what="this work item")
    if not item.is_open:
        raise Conflict(f"Work item #{item.pk} is already {item.get_state_display().lower()}")
    resolution = (resolution or "").strip()
    if not resolution:
        raise DomainError("Say how the item was resolved")
    item.state = WorkItem.State.CANCELLED if cancelled else WorkItem.State.DONE
    item.resolution, item.closed_at, item.closed_by = resolution[:300], timezone.now(), actor
    return save_with_history(
        item,
        actor=actor,
        reason=resolution[:100],
        update_fields=["state", "resolution", "closed_at", "closed_by"],
    )


# -- claiming ---------------------------------------------------------------------------------


def _workable_now(today: dt.date) -> Q:
    return Q(not_before__isnull=True) | Q(not_before__lte=today)


@transaction.atomic
def get_next(actor) -> WorkItem | None:
    """The actor's next item: their own claimed work first, else the highest-priority unassigned
    item of a queue they work, claimed atomically with the patient's other open items."""
    now, today = timezone.now(), _today()
    own = (
        WorkItem.objects.open()
        .filter(owner=actor)
        .filter(_workable_now(today))
        .by_priority()
        .select_for_update(skip_locked=True)
        .first()
    )
    if own is not None:
        own.last_activity_at = now
        return save_with_history(
            own, actor=actor, reason="Taken up again", update_fields=["last_activity_at"]
        )
    queue_ids = workable_queue_ids(actor)
    if not queue_ids:
        raise NotAllowed("You are in no team that works a queue; ask your supervisor")
    item = (
        WorkItem.objects.open()
        .unassigned()
        .filter(queue_id__in=queue_ids)
        .filter(_workable_now(today))
        .by_priority()
        .select_for_update(skip_locked=True)
        .first()
    )
    if item is None:
        return None
    _claim(item, actor, now)
    _claim_patient_siblings(item, actor, queue_ids, now)
    return item


def _claim(item: WorkItem, actor, now) -> None:
    item.owner, item.assignment = actor, WorkItem.Assignment.CLAIMED
    item.claimed_at = item.last_activity_at = now
    save_with_history(
        item,
        actor=actor,
        reason="Claimed (get next)",
        update_fields=["owner", "assignment", "claimed_at", "last_activity_at"],
    )
    if item.gap_id is not None:
        _set_gap_owners({item.gap_id: actor}, actor=actor, reason="Claimed (get next)")


def _claim_patient_siblings(item: WorkItem, actor, queue_ids: list[int], now) -> int:
    siblings = list(
        WorkItem.objects.open()
        .unassigned()
        .filter(patient_id=item.patient_id, queue_id__in=queue_ids)
        .exclude(pk=item.pk)
        .select_for_update(skip_locked=True)
    )
    for sibling in siblings:
        sibling.owner, sibling.assignment = actor, WorkItem.Assignment.CLAIMED
        sibling.claimed_at = sibling.last_activity_at = now
    reason = "Claimed with the patient's other work"
    bulk_update_with_history(
        siblings,
        ["owner", "assignment", "claimed_at", "last_activity_at"],
        actor=actor,
        reason=reason,
    )
    _set_gap_owners({s.gap_id: actor for s in siblings if s.gap_id}, actor=actor, reason=reason)
    return len(siblings)


@transaction.atomic
def claim_patient(patient, *, actor) -> int:
    """Take every unassigned open item of this patient in the queues the actor works (an agent
    opening a case from a list works all of it)."""
    require_organization_access(actor, patient.organization_id, what="this patient")
    queue_ids = list(workable_queues(actor).values_list("pk", flat=True))
    now = timezone.now()
    items = list(
        WorkItem.objects.open()
        .unassigned()
        .filter(patient_id=patient.pk, queue_id__in=queue_ids)
        .select_for_update(skip_locked=True)
    )
    for item in items:
        item.owner, item.assignment = actor, WorkItem.Assignment.CLAIMED
        item.claimed_at = item.last_activity_at = now
    bulk_update_with_history(
        items,
        ["owner", "assignment", "claimed_at", "last_activity_at"],
        actor=actor,
        reason="Claimed from the case page",
    )
    _set_gap_owners(
        {i.gap_id: actor for i in items if i.gap_id}, actor=actor, reason="Claimed from the case"
    )
    return len(items)


@transaction.atomic
def touch_patient_work(patient, *, actor) -> int:
    """Keep the actor's claims on this patient alive (they are working the case)."""
    now = timezone.now()
    items = list(
        WorkItem.objects.open().filter(patient_id=patient.pk, owner=actor).select_for_update()
    )
    for item in items:
        item.last_activity_at = now
    return bulk_update_with_history(
        items, ["last_activity_at"], actor=actor, reason="Worked on the case"
    )


@transaction.atomic
def release_idle_claims(*, now: dt.datetime | None = None, actor=None) -> int:
    """Claims idle for 30 minutes go back to their queues (supervisor assignments stay)."""
    actor = actor or get_system_user()
    now = now or timezone.now()
    idle = list(
        WorkItem.objects.filter(
            state="open",
            assignment=WorkItem.Assignment.CLAIMED,
            last_activity_at__lt=now - dt.timedelta(minutes=CLAIM_IDLE_MINUTES),
        ).select_for_update(skip_locked=True)
    )
    for item in idle:
        item.owner, item.assignment, item.claimed_at = None, WorkItem.Assignment.NONE, None
    reason = f"Claim idle for {CLAIM_IDLE_MINUTES} minutes: back to the queue"
    released = bulk_update_with_history(
        idle, ["owner", "assignment", "claimed_at"], actor=actor, reason=reason
    )
    _set_gap_owners({i.gap_id: None for i in idle if i.gap_id}, actor=actor, reason=reason)
    return released


@transaction.atomic
def assign_items(item_ids: Iterable[int], *, to, actor, reason: str) -> int:
    """Supervisors assign (or reassign) open items to a person who works their queues; `to=None`
    puts them back in the queue."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("A reason is required to assign work")
    if not (actor.is_system or actor.has_perm("worklists.assign_workitem")):
        raise NotAllowed("Only supervisors assign work")
    items = list(WorkItem.objects.select_for_update().filter(pk__in=list(item_ids)).order_by("pk"))
    if not items:
        raise DomainError("Choose at least one work item")
    for org_id in {item.organization_id for item in items}:
        require_organization_access(actor, org_id, what="these work items")
    closed = [item.pk for item in items if not item.is_open]
    if closed:
        raise Conflict(f"Work items already finished cannot be assigned: #{closed[0]}")
    if to is not None:
        allowed = set(workable_queues(to).values_list("pk", flat=True))
        refused = [item for item in items if item.queue_id not in allowed]
        if refused:
            raise DomainError(
                f"{to.username} does not work the queue {refused[0].queue} "
                f"(work item #{refused[0].pk}); add them to its team first"
            )
    now = timezone.now()
    for item in items:
        item.owner = to
        item.assignment = WorkItem.Assignment.ASSIGNED if to else WorkItem.Assignment.NONE
        item.claimed_at = now if to else None
        item.last_activity_at = now
    changed = bulk_update_with_history(
        items,
        ["owner", "assignment", "claimed_at", "last_activity_at"],
        actor=actor,
        reason=reason[:100],
    )
    _set_gap_owners({i.gap_id: to for i in items if i.gap_id}, actor=actor, reason=reason[:100])
    return changed


def _set_gap_owners(owner_of_gap: dict[int, object], *, actor, reason: str) -> None:
    """A gap's owner is whoever holds its open work; kept on the gap for the gap list."""
    if not owner_of_gap:
        return
    gaps = list(CareGap.objects.select_for_update().filter(pk__in=list(owner_of_gap)))
    changed = []
    for gap in gaps:
        owner = owner_of_gap[gap.pk]
        owner_id = owner.pk if owner is not None else None
        if gap.owner_id != owner_id:
            gap.owner_id = owner_id
            changed.append(gap)
    bulk_update_with_history(changed, ["owner"], actor=actor, reason=reason)


# -- outreach follow-ups ----------------------------------------------------------------------

# What each kind of outreach follow-up asks a person to do.
FOLLOW_UP_WORK = {
    "call_unconfirmed": K.SCHEDULE,
    "callback": K.CALL_BACK,
    "unknown_send": K.OUTREACH_CALL,
    "clinical_concern": K.COORDINATOR_REVIEW,
    "no_show_call": K.NO_SHOW_RECOVERY,
    "outreach_call": K.OUTREACH_CALL,
}


@transaction.atomic
def open_follow_up_item(follow_up, *, actor) -> WorkItem:
    """The work an outreach follow-up asks for. When the patient already has that kind of work
    open (say the gap's no-show recovery), the follow-up joins it instead of a second item."""
    kind = FOLLOW_UP_WORK.get(follow_up.kind, K.OUTREACH_CALL)
    existing = (
        WorkItem.objects.select_for_update()
        .open()
        .filter(patient_id=follow_up.patient_id, kind=kind, follow_up_ref__isnull=True)
        .order_by("pk")
        .first()
    )
    label = follow_up.get_kind_display()
    reason = f"{label}: {follow_up.note}" if follow_up.note else label
    if existing is not None:
        existing.follow_up_ref = follow_up.pk
        existing.reason = reason[:300]
        return save_with_history(
            existing, actor=actor, reason=label[:100], update_fields=["follow_up_ref", "reason"]
        )
    return open_item(
        follow_up.patient,
        kind=kind,
        actor=actor,
        reason=reason,
        due_date=timezone.localdate(follow_up.due_at),
        follow_up_ref=follow_up.pk,
        attempt_ref=follow_up.attempt_id,
        appointment_ref=follow_up.appointment_id,
    )


def _finish_follow_ups(items: Iterable[WorkItem], *, actor, note: str) -> None:
    """Outreach's follow-ups behind finished items are done too (their lag is measured)."""
    refs = [item.follow_up_ref for item in items if item.follow_up_ref is not None]
    if not refs:
        return
    from outreach.models import FollowUp
    from outreach.services.common import complete_follow_up

    for follow_up in FollowUp.objects.filter(pk__in=refs, done_at__isnull=True):
        complete_follow_up(follow_up, actor=actor, note=note[:300])


@transaction.atomic
def complete_item(item: WorkItem, *, actor, resolution: str) -> WorkItem:
    """A person finished the item (a callback made, a check-in done), and its follow-up too."""
    item = close_item(item, actor=actor, resolution=resolution)
    _finish_follow_ups([item], actor=actor, note=resolution)
    return item
