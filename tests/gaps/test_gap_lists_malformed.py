"""Gap lists with malformed cells, headers or dates are refused by name, never a 500."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from carehub.errors import DomainError
from carehub.history import update_with_history
from gaps.care_gaps import CareGap, GapListImport
from gaps.gap_lists import import_gap_list
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(org_a):
    return PatientFactory(organization=org_a, mrn="A100")


def due_in(days: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


def _import(org, actor, text: str):
    return import_gap_list(
        org,
        content=text.encode(),
        file_name="gaps.csv",
        source_name="Blue Horizon MA",
        source_kind="payer_list",
        actor=actor,
    )


REFUSED_FILES = {
    "nul-in-a-cell": (
        f"mrn,measure,due_date\nA1\x0000,CMS130,{due_in(30)}\n",
        "line 2: contains a NUL character",
    ),
    "field-over-128-kb": (
        f"mrn,measure,due_date,missing\nA100,CMS130,{due_in(30)},{'x' * 200_000}\n",
        "line 2: a field is longer than 131,072 characters",
    ),
    "duplicate-headers": (
        f"mrn,measure,due_date,mrn\nA100,CMS130,{due_in(30)},Z999\n",
        "Duplicate column(s): mrn",
    ),
}


@pytest.mark.parametrize("text, message", REFUSED_FILES.values(), ids=REFUSED_FILES.keys())
def test_malformed_files_are_refused_whole(org_a, panel, supervisor_a, text, message):
    with pytest.raises(DomainError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _import(org_a, supervisor_a, text)
    assert not GapListImport.objects.exists() and not CareGap.objects.exists()


def test_a_short_row_is_a_bad_row_not_a_crash(org_a, panel, supervisor_a):
    record = _import(org_a, supervisor_a, f"measure,due_date,mrn\nCMS130,{due_in(30)}\nA100\n")
    assert [problem["line"] for problem in record.problems] == [2, 3]
    assert not CareGap.objects.exists()


def test_implausible_dates_are_bad_rows(org_a, panel, supervisor_a):
    limit = (timezone.localdate() + dt.timedelta(days=3653)).year
    text = (
        "mrn,measure,due_date,last_service_date\n"
        "A100,CMS130,0001-01-01,\n"
        "A100,CMS125,9999-12-31,\n"
        "A100,CMS124,1899-12-31,\n"
        f"A100,CMS122,{due_in(30)},9999-12-31\n"
        f"A100,CMS165,{due_in(30)},1850-01-01\n"
        f"A100,CMS117,{due_in(30)},{due_in(-400)}\n"
    )
    record = _import(org_a, supervisor_a, text)
    reasons = [problem["reason"] for problem in record.problems]
    assert reasons == [
        f"due_date 0001-01-01 is not plausible (1900 to {limit})",
        f"due_date 9999-12-31 is not plausible (1900 to {limit})",
        f"due_date 1899-12-31 is not plausible (1900 to {limit})",
        "last_service_date 9999-12-31 is not plausible (1900 to today)",
        "last_service_date 1850-01-01 is not plausible (1900 to today)",
    ]
    assert list(CareGap.objects.values_list("measure_code", flat=True)) == ["CMS117"]


def upload(client, org, content: bytes):
    return client.post(
        reverse("admin:gaps_gaplistimport_add"),
        {
            "file": SimpleUploadedFile("list.csv", content),
            "organization": org.pk,
            "source_name": "Blue Horizon",
            "source_kind": "payer_list",
        },
    )


@pytest.mark.parametrize("case", REFUSED_FILES.keys())
def test_the_admin_upload_shows_the_problem_as_a_form_error(client, supervisor_a, org_a, case):
    client.force_login(supervisor_a)
    text, message = REFUSED_FILES[case]
    response = upload(client, org_a, text.encode())
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not GapListImport.objects.exists()


def test_a_stored_list_that_no_longer_parses_is_an_error_message_not_a_500(
    client, supervisor_a, org_a, panel
):
    # A list received before the NUL check existed: its preview and apply say what is wrong.
    client.force_login(supervisor_a)
    assert upload(client, org_a, f"mrn,measure,due_date\nA100,CMS130,{due_in(9)}\n".encode())
    record = GapListImport.objects.get()
    update_with_history(
        GapListImport.objects.filter(pk=record.pk),
        actor=supervisor_a,
        reason="test: a list stored before the NUL check",
        content=f"mrn,measure,due_date\nA1\x0000,CMS130,{due_in(9)}\n".encode(),
    )
    url = reverse("admin:gaps_gaplistimport_preview", args=[record.pk])
    page = client.get(url)
    assert page.status_code == 200 and "contains a NUL character" in page.content.decode()
    applied = client.post(url, follow=True)
    assert applied.status_code == 200 and "contains a NUL character" in applied.content.decode()
    record.refresh_from_db()
    assert record.status == GapListImport.Status.PREVIEWED and not CareGap.objects.exists()
