"""What worklists does when gaps and outreach publish an event (see carehub.events).

Each handler runs inside the publishing service's transaction: the gap transition and the work it
opens or closes are one commit.
"""

from __future__ import annotations

from carehub import events
from worklists import services


def on_gap_opened(*, gap, actor, **_) -> None:
    # A person opened this very gap: it is worked even in a period that has ended.
    services.reconcile_gap_items(
        [gap.pk], actor=actor, reason="Gap opened", include_ended_periods=not actor.is_system
    )


def on_gap_transitioned(*, gap, previous_state: str, actor, reason: str = "", **_) -> None:
    services.reconcile_gap_items(
        [gap.pk],
        actor=actor,
        reason=reason,
        previous_states={gap.pk: previous_state},
        include_ended_periods=not actor.is_system,
    )


def on_gaps_synced(*, gap_ids, actor, **_) -> None:
    # Whoever ran the evaluation, a past period's gaps create no agent work unless asked for
    # (worklists.hygiene.open_work_for_period).
    services.reconcile_gap_items(
        gap_ids, actor=actor, reason="Engine results: the gap's work follows its new state"
    )


def on_documentation_overdue(*, gap_ids, actor, **_) -> None:
    services.reconcile_gap_items(
        gap_ids,
        actor=actor,
        reason="No documentation 14 days after the service: coordinator follow-up",
    )


def on_outreach_event(*, event, **_) -> None:
    from carehub.history import get_system_user

    actor = get_system_user()
    if event.kind == "follow_up_created" and event.follow_up_id is not None:
        from outreach.models import FollowUp

        follow_up = FollowUp.objects.select_related("patient").get(pk=event.follow_up_id)
        services.open_follow_up_item(follow_up, actor=actor)
    elif event.kind in ("attempt_outcome", "appointment_changed"):
        # Next steps may have moved (a next attempt, a visit): the patient's work follows.
        from gaps.care_gaps import OPEN_STATES, CareGap

        gap_ids = CareGap.objects.filter(
            patient_id=event.patient_id, state__in=OPEN_STATES
        ).values_list("pk", flat=True)
        services.reconcile_gap_items(gap_ids, actor=actor, reason="Outreach: next step moved")


def connect() -> None:
    events.subscribe(events.GAP_OPENED, on_gap_opened)
    events.subscribe(events.GAP_TRANSITIONED, on_gap_transitioned)
    events.subscribe(events.GAPS_SYNCED, on_gaps_synced)
    events.subscribe(events.GAPS_DOCUMENTATION_OVERDUE, on_documentation_overdue)
    events.subscribe(events.OUTREACH_EVENT, on_outreach_event)
