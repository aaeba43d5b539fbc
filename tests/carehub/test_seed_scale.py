"""seed_scale: refuses production settings; on PostgreSQL a small run clones imported template
patients with their clinical data and writes gaps in every state and outreach attempts, each
with its history row."""

import io

import pytest
from django.core.management import CommandError, call_command

from carehub.history import get_system_user
from gaps.care_gaps import CareGap, GapSource
from outreach.models import OutreachAttempt
from patients.clinical import ClinicalCoding, ClinicalRecord, FhirPatientDetail
from patients.models import Patient
from tests.gaps.conftest import needs_shared, valuesets_2024  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_seed_scale_refuses_to_run_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_scale", patients=10)


def test_seed_scale_refuses_nonsense_sizes(settings):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="at least 1"):
        call_command("seed_scale", patients=0)


@needs_shared
@pytest.mark.postgres
def test_a_small_scale_seed_clones_patients_with_data_gaps_and_history(
    postgres_only,
    settings,
    valuesets_2024,  # noqa: F811
):
    settings.DEBUG = True
    out = io.StringIO()
    call_command(
        "seed_scale",
        patients=60,
        template_patients=12,
        gaps_per_patient=5,
        attempts_per_patient=3,
        slug="scale-test",
        year=2025,
        no_progress=True,
        stdout=out,
    )
    assert "60 patients" in out.getvalue()
    patients = Patient.objects.filter(organization__slug="scale-test")
    assert patients.count() == 60
    assert FhirPatientDetail.objects.filter(patient__in=patients).count() == 60
    clones = patients.filter(mrn__startswith="S")
    assert clones.count() == 48
    # Every clone has the records and codings of some template patient.
    records = ClinicalRecord.objects.filter(patient__in=clones)
    assert records.count() > 48
    assert ClinicalCoding.objects.filter(record__in=records).count() >= records.count()
    gaps = CareGap.objects.filter(organization__slug="scale-test")
    assert gaps.count() == 60 * 5
    assert gaps.values("state").distinct().count() >= 8
    assert not gaps.filter(state__in=["identified", "outreach"], next_step_due__isnull=True)
    assert GapSource.objects.filter(gap__in=gaps).count() == 300
    attempts = OutreachAttempt.objects.filter(patient__in=patients)
    assert attempts.count() == 180
    assert set(attempts.values_list("step", flat=True)) == {"gap_first", "gap_second", "agent_call"}
    system = get_system_user()
    for model, rows in ((Patient, clones), (CareGap, gaps), (OutreachAttempt, attempts)):
        history = model.history.filter(id__in=rows.values("id"))
        assert history.count() == rows.count()
        assert set(history.values_list("history_user", "history_type")) == {(system.pk, "+")}
    # The sequences moved past the copied ids: the ORM still creates rows.
    Patient.objects.create(
        organization=patients.first().organization,
        mrn="after-seed",
        given_name="A",
        family_name="B",
        birth_date="2000-01-01",
        sex="female",
    )
    # Twice with the same slug is refused by name.
    with pytest.raises(CommandError, match="scale-test"):
        call_command("seed_scale", patients=5, slug="scale-test", no_progress=True)
