"""django-q2 entry points (no arguments, no PHI): each calls one service as the system user."""

from __future__ import annotations


def release_idle_claims() -> int:
    from worklists import services

    return services.release_idle_claims()


def recompute_risk_tiers() -> dict:
    from worklists import risk

    return risk.recompute_risk_tiers()


def retire_ended_period_work() -> int:
    from worklists import hygiene

    return hygiene.retire_ended_period_work()
