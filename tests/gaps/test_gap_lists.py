"""Payer and EHR gap lists: good rows land, bad rows are reported by line, twice changes nothing."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from carehub.errors import DomainError
from gaps.care_gaps import CareGap, GapListImport, GapSource, GapState
from gaps.gap_lists import import_gap_list
from gaps.models import EvaluationRun, MeasureResult
from tests.gaps.factories import CareGapFactory, measure
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(org_a):
    return [
        PatientFactory(organization=org_a, mrn="A100", member_id="M-100"),
        PatientFactory(organization=org_a, mrn="A200", member_id="M-200"),
        PatientFactory(organization=org_a, mrn="A300", member_id="M-300"),
    ]


MIXED = (
    "mrn,member_id,measure,due_date,missing,source,last_service_date\n"
    "A100,,CMS130,2026-12-31,colonoscopy or FIT,,\n"  # line 2: good
    ",M-200,BCS,12/31/2026,mammogram,Blue Horizon,2023-05-01\n"  # 3: good (HEDIS code)
    "Z999,,CMS130,2026-12-31,,,\n"  # 4: unknown MRN
    "A300,,CMS999,2026-12-31,,,\n"  # 5: unknown measure
    "A300,,CMS125,2026-31-12,,,\n"  # 6: bad date
    "A100,,COL,2026-11-30,duplicate,,\n"  # 7: duplicate of line 2
)


def _import(org, actor, text, **kwargs):
    return import_gap_list(
        org,
        content=text.encode(),
        file_name="gaps.csv",
        source_name="Blue Horizon MA",
        source_kind="payer_list",
        actor=actor,
        **kwargs,
    )


def test_good_rows_land_and_every_bad_row_is_reported_by_line(org_a, panel, supervisor_a):
    record = _import(org_a, supervisor_a, MIXED)

    assert record.status == GapListImport.Status.APPLIED
    assert record.problems == [
        {"line": 4, "reason": "unknown MRN 'Z999'"},
        {"line": 5, "reason": "unknown measure 'CMS999'"},
        {"line": 6, "reason": "bad due_date '2026-31-12' (use YYYY-MM-DD)"},
        {"line": 7, "reason": "duplicate of line 2 (same patient, measure and period)"},
    ]
    assert record.counts["opened"] == 2
    colorectal = CareGap.objects.get(patient=panel[0])
    assert (colorectal.measure_code, colorectal.state, colorectal.primary_source) == (
        "CMS130",
        "identified",
        "payer_list",
    )
    assert colorectal.period_start == dt.date(2026, 1, 1)
    source = CareGap.objects.get(patient=panel[1]).sources.get()
    assert (source.name, source.line, source.last_service_date) == (
        "Blue Horizon",
        3,
        dt.date(2023, 5, 1),
    )
    assert colorectal.history.get().history_user == supervisor_a


def test_all_or_nothing_imports_nothing_when_a_row_is_bad(org_a, panel, supervisor_a):
    record = _import(org_a, supervisor_a, MIXED, all_or_nothing=True)
    assert record.status == GapListImport.Status.REJECTED
    assert len(record.problems) == 4
    assert not CareGap.objects.exists() and not GapSource.objects.exists()


def test_importing_the_same_file_twice_changes_nothing(org_a, panel, supervisor_a):
    _import(org_a, supervisor_a, MIXED)
    gaps, sources = CareGap.history.count(), GapSource.history.count()
    again = _import(org_a, supervisor_a, MIXED)
    assert again.status == GapListImport.Status.DUPLICATE
    assert (CareGap.history.count(), GapSource.history.count()) == (gaps, sources)
    # The same rows in a differently written file add no second source either.
    _import(org_a, supervisor_a, MIXED.replace("colonoscopy or FIT", "colonoscopy"))
    assert GapSource.objects.count() == 2


def test_a_list_gap_joins_the_engines_gap_as_another_source(org_a, panel, supervisor_a):
    engine_gap = CareGapFactory(patient=panel[0])
    _import(org_a, supervisor_a, "mrn,measure,due_date\nA100,CMS130,2026-12-31\n")
    assert CareGap.objects.get() == engine_gap
    assert list(engine_gap.sources.values_list("name", flat=True)) == ["Blue Horizon MA"]


def test_a_list_gap_our_data_shows_met_goes_to_review(org_a, panel, supervisor_a, system_user):
    run = EvaluationRun.objects.create(
        organization=org_a,
        actor=system_user,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
    )
    MeasureResult.objects.create(
        organization=org_a,
        patient=panel[2],
        measure=measure("CMS130"),
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
        ip=True,
        denom=True,
        numer=True,
        status="closed",
        gap_status="closed-gap",
        evaluation_run=run,
    )
    record = _import(org_a, supervisor_a, "mrn,measure,due_date\nA300,COL,2026-12-31\n")
    gap = CareGap.objects.get()
    assert gap.state == GapState.NEEDS_REVIEW
    assert "probably done elsewhere" in gap.history.get().history_change_reason
    assert record.counts["to_review"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("mrn,due_date\nA100,2026-12-31\n", "Missing column"),
        ("measure,due_date\nCMS130,2026-12-31\n", "mrn or member_id"),
    ],
)
def test_a_file_without_the_columns_is_refused_whole(org_a, panel, supervisor_a, text, message):
    with pytest.raises(DomainError, match=message):
        _import(org_a, supervisor_a, text)
    assert not GapListImport.objects.exists()


def test_patients_of_another_organization_are_unknown(org_a, org_b, supervisor_a):
    PatientFactory(organization=org_b, mrn="B100")
    record = _import(org_a, supervisor_a, "mrn,measure,due_date\nB100,CMS130,2026-12-31\n")
    assert record.problems == [{"line": 2, "reason": "unknown MRN 'B100'"}]
    assert not CareGap.objects.exists()


def test_the_command_reports_bad_rows_and_counts(org_a, panel, system_user, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(MIXED)
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_gap_list",
        str(path),
        organization=org_a.slug,
        source="Blue Horizon",
        stdout=out,
        stderr=err,
    )
    assert f"{path}:4: unknown MRN 'Z999'" in err.getvalue()
    assert "Applied" in out.getvalue() and "opened 2" in out.getvalue()
    with pytest.raises(CommandError, match="Nothing imported"):
        path.write_text(MIXED + "A200,,CMS122,2026-12-31,,,\n")
        call_command(
            "import_gap_list",
            str(path),
            organization=org_a.slug,
            source="Blue Horizon",
            all_or_nothing=True,
            stdout=out,
            stderr=err,
        )
