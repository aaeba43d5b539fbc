"""Closing a CMS165 or CMS122 gap records the result value the measure rests on, and a value
that does not meet the measure is refused with the reason."""

from decimal import Decimal

import pytest
from django.utils import timezone

from carehub.errors import DomainError
from gaps import workflow
from gaps.care_gaps import GapEvidence, GapState
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR)]


def close(gap, actor, **values):
    return workflow.close_gap(
        gap,
        actor=actor,
        service_date=timezone.localdate(),
        evidence_kind=GapEvidence.Kind.VISIT_NOTE,
        reference="NOTE-1",
        **values,
    )


def test_a_blood_pressure_gap_closes_only_on_a_controlled_reading(patient_a, agent_a):
    gap = CareGapFactory(patient=patient_a, measure_code="CMS165", state=GapState.COMPLETED)
    with pytest.raises(DomainError, match="systolic and diastolic"):
        close(gap, agent_a)
    with pytest.raises(DomainError, match="150/85 mmHg is not controlled"):
        close(gap, agent_a, systolic_bp=150, diastolic_bp=85)
    gap.refresh_from_db()
    assert gap.state == GapState.COMPLETED and not gap.evidence.exists()

    close(gap, agent_a, systolic_bp=128, diastolic_bp=82)
    evidence = GapEvidence.objects.get(gap=gap)
    assert (evidence.systolic_bp, evidence.diastolic_bp) == (128, 82)
    assert evidence.history.get().systolic_bp == 128


def test_an_hba1c_gap_closes_only_at_or_below_nine_percent(patient_a, agent_a):
    gap = CareGapFactory(patient=patient_a, measure_code="CMS122", state=GapState.COMPLETED)
    with pytest.raises(DomainError, match=r"9.4% is above 9%"):
        close(gap, agent_a, hba1c_percent=Decimal("9.4"))
    close(gap, agent_a, hba1c_percent=Decimal("7.2"))
    assert GapEvidence.objects.get(gap=gap).hba1c_percent == Decimal("7.2")


def test_a_screening_takes_no_result_value(patient_a, agent_a):
    gap = CareGapFactory(patient=patient_a, measure_code="CMS130", state=GapState.COMPLETED)
    with pytest.raises(DomainError, match="does not close on a result value"):
        close(gap, agent_a, systolic_bp=120, diastolic_bp=80)
