"""Risk tiers (high / rising / low), computed set-based each night.

One `INSERT … SELECT … ON CONFLICT DO UPDATE` scores every active patient of an organization
(or all) from what CareHub holds about them:

| fact (from)                                                       | points            |
|-------------------------------------------------------------------|-------------------|
| chronic conditions: active, confirmed Conditions without an end   | 2 each, up to 6   |
|   (imported FHIR Condition records)                               |                   |
| open care gaps (gaps.CareGap in an open workflow state)           | 1 each, up to 4   |
| ED visits and inpatient admissions in 12 months (Encounter class  | 3 each, up to 6   |
|   EMER, IMP, ACUTE, OBSENC)                                       |                   |
| no-shows in 12 months (no-show recovery work items)               | 2 each, up to 4   |
| days since the last finished encounter: none or over 365: 2;      | 0 to 2            |
|   over 180: 1                                                     |                   |

Tier: 8 points or more is high, 4 or more rising, else low. The facts are kept on the row so the
patient page can say why. Then every open work item whose patient changed tier is re-ranked (with
history), so get-next follows tonight's tiers.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from carehub.history import get_system_user, update_with_history
from gaps.care_gaps import OPEN_STATES, CareGap
from patients.clinical import ClinicalRecord
from patients.models import Patient
from worklists.models import RISK_RANK, ItemKind, PatientRisk, RiskTier, WorkItem

HIGH_FROM, RISING_FROM = 8, 4
ACUTE_CLASSES = ("EMER", "IMP", "ACUTE", "OBSENC")
POINTS = {
    "chronic_conditions": (2, 6),
    "open_gaps": (1, 4),
    "acute_visits": (3, 6),
    "no_shows": (2, 4),
}
STALE_VISIT_DAYS, LONG_AGO_VISIT_DAYS = 180, 365


def tier_of(score: int) -> str:
    if score >= HIGH_FROM:
        return RiskTier.HIGH
    if score >= RISING_FROM:
        return RiskTier.RISING
    return RiskTier.LOW


def explain(risk: PatientRisk, *, today: dt.date | None = None) -> list[tuple[str, int]]:
    """(what, points) lines that add up to the score, for the patient page."""
    today = today or timezone.localdate()
    lines = []
    for field, label in (
        ("chronic_conditions", "chronic condition(s)"),
        ("open_gaps", "open care gap(s)"),
        ("acute_visits", "ED visit(s) or admission(s) in 12 months"),
        ("no_shows", "no-show(s) in 12 months"),
    ):
        count = getattr(risk, field)
        each, cap = POINTS[field]
        if count:
            lines.append((f"{count} {label}", min(count * each, cap)))
    if risk.last_visit_on is None:
        lines.append(("no visit on record", 2))
    else:
        days = (today - risk.last_visit_on).days
        points = 2 if days > LONG_AGO_VISIT_DAYS else 1 if days > STALE_VISIT_DAYS else 0
        lines.append((f"last visit {days} days ago", points))
    return lines


def _capped(expression: str, field: str) -> str:
    each, cap = POINTS[field]
    return f"(CASE WHEN {expression} * {each} > {cap} THEN {cap} ELSE {expression} * {each} END)"


@transaction.atomic
def recompute_risk_tiers(organization=None, *, today: dt.date | None = None, actor=None) -> dict:
    """Score every active patient (of one organization, or all); {tier: patients}."""
    actor = actor or get_system_user()
    today = today or timezone.localdate()
    now = timezone.now()
    year_ago = today - dt.timedelta(days=365)
    year_ago_instant = dt.datetime.combine(year_ago, dt.time.min, tzinfo=dt.UTC)
    quote = connection.ops.quote_name
    risk, patient = quote(PatientRisk._meta.db_table), quote(Patient._meta.db_table)
    record, gap = quote(ClinicalRecord._meta.db_table), quote(CareGap._meta.db_table)
    item = quote(WorkItem._meta.db_table)
    states = sorted(OPEN_STATES)
    date = connection.ops.adapt_datefield_value
    org_filter = "AND p.organization_id = %s" if organization is not None else ""
    # Table names from model metadata, values as parameters.
    facts = f"""
        SELECT p.id AS patient_id, p.organization_id AS organization_id,
          (SELECT COUNT(*) FROM {record} c WHERE c.patient_id = p.id
             AND c.resource_type = 'Condition' AND c.clinical_active = %s AND c.verified = %s
             AND c.end_date IS NULL AND c.end_open = %s) AS chronic_conditions,
          (SELECT COUNT(*) FROM {gap} g WHERE g.patient_id = p.id
             AND g.state IN ({", ".join(["%s"] * len(states))})) AS open_gaps,
          (SELECT COUNT(*) FROM {record} c WHERE c.patient_id = p.id
             AND c.resource_type = 'Encounter'
             AND c.encounter_class IN ({", ".join(["%s"] * len(ACUTE_CLASSES))})
             AND c.start_date >= %s) AS acute_visits,
          (SELECT COUNT(*) FROM {item} w WHERE w.patient_id = p.id
             AND w.kind = %s AND w.created_at >= %s) AS no_shows,
          (SELECT MAX(c.start_date) FROM {record} c WHERE c.patient_id = p.id
             AND c.resource_type = 'Encounter' AND c.status = 'finished') AS last_visit_on
        FROM {patient} p WHERE p.status = %s {org_filter}
    """  # noqa: S608
    score = (
        " + ".join(_capped(field, field) for field in POINTS)
        + " + (CASE WHEN last_visit_on IS NULL OR last_visit_on < %s THEN 2"
        " WHEN last_visit_on < %s THEN 1 ELSE 0 END)"
    )
    sql = f"""
        INSERT INTO {risk} (patient_id, organization_id, tier, score, chronic_conditions,
            open_gaps, acute_visits, no_shows, last_visit_on, computed_at)
        SELECT patient_id, organization_id,
            CASE WHEN score >= {HIGH_FROM} THEN 'high' WHEN score >= {RISING_FROM} THEN 'rising'
                 ELSE 'low' END,
            score, chronic_conditions, open_gaps, acute_visits, no_shows, last_visit_on, %s
        FROM (SELECT f.*, {score} AS score FROM ({facts}) f) s WHERE 1 = 1
        ON CONFLICT (patient_id) DO UPDATE SET tier = excluded.tier, score = excluded.score,
            chronic_conditions = excluded.chronic_conditions, open_gaps = excluded.open_gaps,
            acute_visits = excluded.acute_visits, no_shows = excluded.no_shows,
            last_visit_on = excluded.last_visit_on, computed_at = excluded.computed_at
    """  # noqa: S608
    params = [
        now,
        date(today - dt.timedelta(days=LONG_AGO_VISIT_DAYS)),
        date(today - dt.timedelta(days=STALE_VISIT_DAYS)),
        True,
        True,
        False,
        *states,
        *ACUTE_CLASSES,
        date(year_ago),
        ItemKind.NO_SHOW_RECOVERY,
        year_ago_instant,
        Patient.Status.ACTIVE,
        *([organization.pk] if organization is not None else []),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    rerank_open_work(organization, actor=actor)
    scoped = PatientRisk.objects.all()
    if organization is not None:
        scoped = scoped.filter(organization=organization)
    return {tier: scoped.filter(tier=tier).count() for tier in RiskTier.values}


def rerank_open_work(organization=None, *, actor) -> int:
    """Open items take their patient's current tier (one UPDATE per tier, history per row)."""
    changed = 0
    for tier, rank in RISK_RANK.items():
        patients = PatientRisk.objects.filter(tier=tier)
        if organization is not None:
            patients = patients.filter(organization=organization)
        stale = WorkItem.objects.filter(
            state="open", patient_id__in=patients.values("patient_id")
        ).exclude(risk_rank=rank)
        changed += update_with_history(
            stale, actor=actor, reason=f"Patient's risk tier is now {tier}", risk_rank=rank
        )
    return changed
