"""Risk tiers are computed set-based from what CareHub holds, explained, and reorder open work."""

import datetime as dt

import pytest
from django.utils import timezone

from patients.clinical import ClinicalRecord, ImportRun
from tests.gaps.factories import CareGapFactory
from tests.patients.factories import PatientFactory
from tests.worklists.factories import WorkItemFactory
from worklists.models import RISK_RANK, PatientRisk, RiskTier
from worklists.risk import explain, recompute_risk_tiers

pytestmark = pytest.mark.django_db


def record(patient, run, resource_type, n, **fields):
    return ClinicalRecord.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        import_run=run,
        resource_type=resource_type,
        resource_id=f"{resource_type}-{patient.pk}-{n}",
        content_hash="x",
        **fields,
    )


def test_tiers_come_from_conditions_acute_visits_gaps_and_time_since_the_last_visit(
    org_a, system_user
):
    today = timezone.localdate()
    run = ImportRun.objects.create(organization=org_a, actor=system_user)
    sick = PatientFactory(organization=org_a)
    for n in range(3):
        record(sick, run, "Condition", n, clinical_active=True)
    record(sick, run, "Condition", 9, clinical_active=True, end_date=today)  # resolved: no
    record(
        sick,
        run,
        "Encounter",
        1,
        encounter_class="EMER",
        status="finished",
        start_date=today - dt.timedelta(days=40),
    )
    rising = PatientFactory(organization=org_a)
    CareGapFactory(patient=rising)
    CareGapFactory(patient=rising, measure_code="CMS125")
    well = PatientFactory(organization=org_a)
    record(
        well,
        run,
        "Encounter",
        1,
        encounter_class="AMB",
        status="finished",
        start_date=today - dt.timedelta(days=20),
    )

    counts = recompute_risk_tiers(org_a, actor=system_user)

    risk = {r.patient_id: r for r in PatientRisk.objects.all()}
    assert risk[sick.pk].tier == RiskTier.HIGH
    assert (risk[sick.pk].chronic_conditions, risk[sick.pk].acute_visits) == (3, 1)
    assert risk[rising.pk].tier == RiskTier.RISING and risk[rising.pk].open_gaps == 2
    assert risk[well.pk].tier == RiskTier.LOW and risk[well.pk].score == 0
    assert counts == {"high": 1, "rising": 1, "low": 1}
    assert explain(risk[sick.pk], today=today) == [
        ("3 chronic condition(s)", 6),
        ("1 ED visit(s) or admission(s) in 12 months", 3),
        ("last visit 40 days ago", 0),
    ]
    assert sum(points for _, points in explain(risk[rising.pk])) == risk[rising.pk].score


def test_a_tier_change_reranks_open_work_with_history(org_a, system_user):
    run = ImportRun.objects.create(organization=org_a, actor=system_user)
    item = WorkItemFactory(organization=org_a, tier=RiskTier.LOW)
    for n in range(4):
        record(item.patient, run, "Condition", n, clinical_active=True)
    recompute_risk_tiers(org_a, actor=system_user)
    item.refresh_from_db()
    assert item.risk_rank == RISK_RANK[RiskTier.HIGH]
    last = item.history.order_by("-history_id").first()
    assert (last.history_user, last.history_change_reason) == (
        system_user,
        "Patient's risk tier is now high",
    )
    # Run again: nothing changes, nothing is written.
    recompute_risk_tiers(org_a, actor=system_user)
    assert item.history.count() == 2
