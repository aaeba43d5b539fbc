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


def connect() -> None:
    events.subscribe(events.GAP_OPENED, on_gap_opened)
    events.subscribe(events.GAP_TRANSITIONED, on_gap_transitioned)
    events.subscribe(events.GAPS_SYNCED, on_gaps_synced)
    events.subscribe(events.GAPS_DOCUMENTATION_OVERDUE, on_documentation_overdue)
