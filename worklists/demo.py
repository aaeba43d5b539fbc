"""Demo worklists for `manage.py seed_demo`: a realistic day for every role.

Each demo organization gets its queues and teams (the agent and the coordinator in theirs), a
little clinical history so the risk tiers differ (chronic conditions, ED visits, recent visits),
work items for every open gap of the current year aged over six weeks (some past their service
level), a few claimed by the agent through get-next, a few assigned by the supervisor, and the
coordinator's escalations claimed. Deterministic (fixed seed).
"""

from __future__ import annotations

import datetime as dt
import random

from django.contrib.auth import get_user_model
from django.utils import timezone

from carehub.history import bulk_create_untracked, bulk_update_with_history, get_system_user
from carehub.roles import AGENT
from gaps.care_gaps import OPEN_STATES, CareGap, GapState
from gaps.workflow import reopen_after_no_show
from patients.clinical import ClinicalRecord, ImportRun
from patients.demo import DEMO_ORGANIZATIONS
from patients.models import Organization, Patient
from worklists.models import ItemKind, WorkItem
from worklists.queues import add_team_member, ensure_default_queues
from worklists.risk import recompute_risk_tiers
from worklists.services import (
    assign_items,
    claim_patient,
    get_next,
    open_item,
    reconcile_gap_items,
    sla_deadline,
)

SEED = 11_2026
REASON = "demo data (seed_demo)"


def _clinical_history(organization: Organization, rng: random.Random, actor) -> int:
    """Conditions, ED visits and office visits for some patients, so tiers come out mixed."""
    run = ImportRun.objects.create(
        organization=organization, actor=actor, source="demo", status=ImportRun.Status.SUCCEEDED
    )
    today = timezone.localdate()
    records = []
    for patient_id in Patient.objects.filter(organization=organization).values_list(
        "pk", flat=True
    ):
        roll = rng.random()
        conditions = 4 if roll < 0.08 else 2 if roll < 0.3 else 0
        visits_ed = rng.choice([1, 2]) if rng.random() < 0.12 else 0
        last_visit = rng.randint(5, 500) if rng.random() < 0.7 else None
        rows = [("Condition", {"clinical_active": True}) for _ in range(conditions)]
        rows += [
            (
                "Encounter",
                {
                    "encounter_class": "EMER",
                    "status": "finished",
                    "start_date": today - dt.timedelta(days=rng.randint(10, 300)),
                },
            )
            for _ in range(visits_ed)
        ]
        if last_visit is not None:
            rows.append(
                (
                    "Encounter",
                    {
                        "encounter_class": "AMB",
                        "status": "finished",
                        "start_date": today - dt.timedelta(days=last_visit),
                    },
                )
            )
        for n, (resource_type, fields) in enumerate(rows):
            records.append(
                ClinicalRecord(
                    organization=organization,
                    patient_id=patient_id,
                    import_run=run,
                    resource_type=resource_type,
                    resource_id=f"demo-{patient_id}-{n}",
                    content_hash="demo",
                    has_timing="start_date" in fields,
                    **fields,
                )
            )
    bulk_create_untracked(records)
    return len(records)


def seed_demo_work(organizations: list[Organization]) -> int:
    actor = get_system_user()
    rng = random.Random(SEED)
    users = get_user_model().objects
    now = timezone.now()
    total = 0
    for spec in DEMO_ORGANIZATIONS:
        organization = next((o for o in organizations if o.slug == spec["slug"]), None)
        if organization is None:
            continue
        suffix = spec["user_suffix"]
        agent = users.get(username=f"agent{suffix}")
        coordinator = users.get(username=f"coordinator{suffix}")
        supervisor = users.get(username=f"supervisor{suffix}")
        routes = ensure_default_queues(organization, actor=actor)
        add_team_member(routes[ItemKind.REVIEW_GAP].team, agent, actor=actor, reason=REASON)
        add_team_member(
            routes[ItemKind.COORDINATOR_REVIEW].team, coordinator, actor=actor, reason=REASON
        )
        _clinical_history(organization, rng, actor)

        gap_ids = list(
            CareGap.objects.filter(
                organization=organization,
                state__in=OPEN_STATES,
                period_end__gte=timezone.localdate(),
            ).values_list("pk", flat=True)
        )
        opened, _ = reconcile_gap_items(gap_ids, actor=actor, reason=REASON)
        total += opened
        recompute_risk_tiers(organization, actor=actor)

        # A spread of ages (0 to 45 days), so every aging bucket and some breaches show.
        items = list(WorkItem.objects.filter(organization=organization, state="open"))
        for item in items:
            item.created_at = now - dt.timedelta(
                days=rng.choice([0, 1, 2, 4, 6, 10, 13, 20, 28, 45])
            )
            item.sla_due_at = sla_deadline(
                item.kind, created_at=item.created_at, not_before=item.not_before
            )
        bulk_update_with_history(items, ["created_at", "sla_due_at"], actor=actor, reason=REASON)

        # The day's events outreach would have raised: two no-shows, two voicemails to return,
        # a check-in after a procedure.
        scheduled = CareGap.objects.filter(organization=organization, state=GapState.SCHEDULED)
        for gap in scheduled.order_by("pk")[:2]:
            reopen_after_no_show(gap, actor=actor, reason="Missed yesterday's visit (demo)")
        patients = list(Patient.objects.filter(organization=organization).order_by("pk")[:3])
        for patient in patients[:2]:
            open_item(
                patient,
                kind=ItemKind.CALL_BACK,
                actor=actor,
                reason="Voicemail: asks to be called back about the screening letter",
            )
        open_item(
            patients[2],
            kind=ItemKind.POST_PROCEDURE,
            actor=actor,
            reason="Colonoscopy two days ago: check in on how the patient is doing",
        )
        recompute_risk_tiers(organization, actor=actor)

        # The agent's morning so far: three cases taken, three handed over by the supervisor.
        for item in list(
            WorkItem.objects.open()
            .unassigned()
            .filter(organization=organization, queue__role=AGENT)
            .select_related("patient")
            .by_priority()[:3]
        ):
            claim_patient(item.patient, actor=agent)
        unassigned = (
            WorkItem.objects.open()
            .unassigned()
            .filter(organization=organization, queue=routes[ItemKind.OUTREACH_CALL])
            .by_priority()
            .values_list("pk", flat=True)[:3]
        )
        if unassigned:
            assign_items(
                list(unassigned),
                to=agent,
                actor=supervisor,
                reason="Spanish-speaking patients: agent covers them",
            )
        if WorkItem.objects.open().filter(queue=routes[ItemKind.COORDINATOR_REVIEW]).exists():
            get_next(coordinator)
    return total
