"""django-q2 entry points. Arguments are ids only (no PHI); each calls a service."""

from __future__ import annotations

from outreach.services import outbox, sequence


def send_attempt(attempt_id: int) -> str:
    return outbox.send_attempt(int(attempt_id))


def outbox_tick() -> dict:
    """Every minute: stale sends become unknown; due planned attempts get a send task."""
    return {"unknown": outbox.expire_stale_sends(), "enqueued": outbox.enqueue_due()}


def gap_sequence_tick() -> dict:
    return dict(sequence.tick_gap_sequence())


def reminders_tick() -> dict:
    return dict(sequence.tick_reminders())


def dormant_sweep() -> dict:
    return dict(sequence.sweep_dormant())
