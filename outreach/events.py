"""What outreach tells the rest of CareHub: `OutreachEvent`s (ids only, no PHI).

Each event goes two ways:
- as the domain event `carehub.events.OUTREACH_EVENT` (`event=<OutreachEvent>`), at once, inside
  the outreach transaction: worklists opens the work item a follow-up asks for in the same
  commit (a failing handler aborts the outreach change: nothing half-written);
- to this module's `subscribe`rs after the commit (never for a rolled-back change), for work
  that may happen later (notifications, metrics).

Every `FollowUp` outreach creates is published as `follow_up_created`; the other kinds mark
changes a queue may care about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from carehub import events as domain_events

logger = logging.getLogger("outreach.events")

FOLLOW_UP_CREATED = "follow_up_created"  # a person has to act (kind in follow_up_kind)
ATTEMPT_OUTCOME = "attempt_outcome"  # an attempt reached a final status
APPOINTMENT_CHANGED = "appointment_changed"  # booked, confirmed, completed, no-show, cancelled
GAPS_TO_REVIEW = "gaps_to_review"  # outreach sent gaps to coordinator review


@dataclass(frozen=True)
class OutreachEvent:
    kind: str
    organization_id: int
    patient_id: int
    attempt_id: int | None = None
    appointment_id: int | None = None
    follow_up_id: int | None = None
    follow_up_kind: str = ""
    status: str = ""


_subscribers: list[Callable[[OutreachEvent], None]] = []


def subscribe(callback: Callable[[OutreachEvent], None]) -> None:
    if callback not in _subscribers:
        _subscribers.append(callback)


def unsubscribe(callback: Callable[[OutreachEvent], None]) -> None:
    if callback in _subscribers:
        _subscribers.remove(callback)


def publish(event: OutreachEvent) -> None:
    """Deliver after commit; a failing subscriber is logged and does not undo outreach.

    Work items are the exception: worklists listens on carehub.events, inside this transaction,
    so a follow-up and the work item it causes commit (or roll back) together."""
    domain_events.publish(domain_events.OUTREACH_EVENT, event=event)

    def deliver() -> None:
        for callback in list(_subscribers):
            try:
                callback(event)
            except Exception:
                logger.exception("outreach event subscriber failed (event %s)", event.kind)

    transaction.on_commit(deliver)
