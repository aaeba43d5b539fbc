"""Domain events: how a lower app tells a higher one that something happened, without importing it.

Imports flow one way (patients <- gaps <- outreach, gaps <- worklists): the gap workflow and
outreach must not import worklists, yet a gap transition or a no-show has to open and close the
work items it causes. So services `publish("gap.transitioned", gap=..., actor=...)` and the app
that cares `subscribe`s in its `AppConfig.ready()`.

Handlers run synchronously, in the publishing thread, inside the publisher's transaction: a gap
transition and the work items it causes commit or roll back together, and an exception in a
handler aborts the service that published (nothing half-written). This is deliberately not a
signal bus, a queue or `on_commit`: there is no "later" in which the worklist could disagree with
the gap. Work that may happen later (sending, notifying) is enqueued by the handler itself with
`transaction.on_commit`.

Payloads are keyword arguments of model instances and ids, never copied PHI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

# The events published today; a typo in a name is an error instead of a silent no-op.
GAP_OPENED = "gap.opened"  # gap, actor
GAP_TRANSITIONED = "gap.transitioned"  # gap, previous_state, actor, reason
GAPS_SYNCED = "gaps.synced"  # organization, gap_ids, actor (engine results flowed in)
GAPS_DOCUMENTATION_OVERDUE = "gaps.documentation_overdue"  # gap_ids, actor (14-day rule)
# event: outreach.events.OutreachEvent (ids only): a follow-up raised, an attempt's outcome, an
# appointment change. Published by outreach.events.publish inside the outreach transaction.
OUTREACH_EVENT = "outreach.event"

EVENTS = frozenset(
    {
        GAP_OPENED,
        GAP_TRANSITIONED,
        GAPS_SYNCED,
        GAPS_DOCUMENTATION_OVERDUE,
        OUTREACH_EVENT,
    }
)

Handler = Callable[..., None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def _known(event: str) -> str:
    if event not in EVENTS:
        raise ValueError(f"Unknown domain event {event!r}; known: {', '.join(sorted(EVENTS))}")
    return event


def subscribe(event: str, handler: Handler) -> None:
    """Call `handler(**payload)` on every `publish(event, ...)`; subscribing twice is once."""
    handlers = _handlers[_known(event)]
    if handler not in handlers:
        handlers.append(handler)


def unsubscribe(event: str, handler: Handler) -> None:
    if handler in _handlers[_known(event)]:
        _handlers[event].remove(handler)


def publish(name: str, /, **payload) -> None:
    """Run every handler of event `name` now, in the caller's transaction, in subscription
    order (positional-only, so a payload may itself be called `event`)."""
    for handler in list(_handlers[_known(name)]):
        handler(**payload)


def subscribers(event: str) -> list[Handler]:
    return list(_handlers[_known(event)])
