"""A gap's engine result is found by patient, measure and period (gaps.selectors)."""

import datetime as dt

import pytest
from django.db.models import ProtectedError
from django.utils import timezone

from gaps.care_gaps import CareGap
from gaps.models import EvaluationRun, MeasureResult
from gaps.selectors import engine_results, gap_has_result
from tests.gaps.factories import CareGapFactory, measure
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db
YEAR = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


@pytest.fixture
def result(system_user):
    return lambda *args, **kwargs: _result(system_user, *args, **kwargs)


def _result(actor, patient, version, status, *, period=YEAR, minutes_ago=0, **populations):
    run = EvaluationRun.objects.create(
        organization=patient.organization,
        actor=actor,
        period_start=period[0],
        period_end=period[1],
        status="succeeded",
    )
    result = MeasureResult.objects.create(
        organization=patient.organization,
        patient=patient,
        measure=version,
        period_start=period[0],
        period_end=period[1],
        status=status,
        gap_status="open-gap" if status == "open" else "closed-gap",
        evaluation_run=run,
        **populations,
    )
    # evaluated_at is auto_now: date it back as an older evaluation would have been.
    MeasureResult.objects.filter(pk=result.pk).update(
        evaluated_at=timezone.now() - dt.timedelta(minutes=minutes_ago)
    )
    return result


def test_each_gap_gets_the_latest_result_of_its_patient_measure_and_period(org_a, result):
    patient, other = PatientFactory(organization=org_a), PatientFactory(organization=org_a)
    gap = CareGapFactory(patient=patient)  # CMS130, 2026
    result(patient, measure("CMS130", "MP2025"), "open", minutes_ago=60)
    latest = result(patient, measure("CMS130", "MP2026"), "closed", minutes_ago=1)
    result(patient, measure("CMS125", "MP2026"), "open")  # another measure
    result(patient, measure("CMS130", "MP2025"), "open", period=(dt.date(2025, 1, 1),
            dt.date(2025, 12, 31)))  # fmt: skip
    result(other, measure("CMS130", "MP2026"), "open")  # another patient
    never_evaluated = CareGapFactory(patient=PatientFactory(organization=org_a))
    screened = CareGapFactory(patient=other, measure_code="CMS125")  # other's result is CMS130

    found = engine_results(CareGap.objects.filter(pk__in=[gap.pk, never_evaluated.pk, screened.pk]))

    assert found == {gap.pk: latest}


def test_gaps_of_many_patients_are_read_in_batches(org_a, result, django_assert_num_queries):
    version = measure("CMS130", "MP2026")
    gaps = []
    for _ in range(501):
        gap = CareGapFactory(patient=PatientFactory(organization=org_a))
        result(gap.patient, version, "open")
        gaps.append(gap)
    with django_assert_num_queries(2):  # 500 patients, then 1
        found = engine_results(gaps)
    assert set(found) == {gap.pk for gap in gaps}


def test_gap_has_result_filters_gaps_on_their_result(org_a, result):
    met, due = PatientFactory(organization=org_a), PatientFactory(organization=org_a)
    met_gap, due_gap = CareGapFactory(patient=met), CareGapFactory(patient=due)
    result(met, measure("CMS130"), "closed", ip=True, denom=True, numer=True)
    result(due, measure("CMS130"), "open", ip=True, denom=True)

    assert list(CareGap.objects.filter(gap_has_result(numer=True))) == [met_gap]
    assert list(CareGap.objects.filter(gap_has_result(numer=False))) == [due_gap]


def test_a_patient_or_measure_with_results_cannot_be_deleted(org_a, result):
    # Results carry no database constraint on their keys (gaps.models): Django's PROTECT is
    # what keeps a result from pointing at nothing.
    patient = PatientFactory(organization=org_a)
    version = measure("CMS130", "MP2026")
    stored = result(patient, version, "open")
    for referenced in (patient, version):
        with pytest.raises(ProtectedError) as refused:
            referenced.delete()
        assert stored in refused.value.protected_objects
    assert MeasureResult.objects.filter(patient=patient, measure=version).count() == 1
