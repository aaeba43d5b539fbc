"""The gap worklist at load: rows written once per column render exactly as Django renders them,
the list pages past its capped count, and a page costs the same queries however many gaps."""

import datetime as dt

import pytest
from django.contrib.admin.templatetags.admin_list import items_for_result
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carehub.admin_base import CappedCountPaginator
from gaps.care_gaps import GapState, SourceKind
from gaps.gap_admin import CareGapAdmin
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from tests.patients.factories import PatientFactory

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]
CHANGELIST = reverse("admin:gaps_caregap_changelist")
# What the load test's agents ask for (loadtest/locustfile.py), and a sort by hand.
PARAMS = [
    {},
    {"p": "2"},
    {"state": "outreach"},
    {"due": "week"},
    {"measure": "CMS125"},
    {"due": "overdue"},
    {"state": "in_review", "p": "2"},
    {"work": "all", "o": "-3.1"},
]


@pytest.fixture
def varied_gaps(org_a, agent_a):
    """Gaps that exercise every kind of cell: an owner or none, no next step, an ended period,
    every source, a patient name that must be escaped."""
    ended = {"period_start": dt.date(2025, 1, 1), "period_end": dt.date(2025, 12, 31)}
    patient = PatientFactory(organization=org_a, family_name="O'Brien <b>", given_name="A & B")
    gaps = [
        CareGapFactory(patient=patient, owner=agent_a),
        CareGapFactory(patient=patient, measure_code="CMS125", state=GapState.OUTREACH),
        CareGapFactory(
            patient=PatientFactory(organization=org_a),
            state=GapState.CLOSED,
            primary_source=SourceKind.PAYER_LIST,
        ),
        CareGapFactory(patient=PatientFactory(organization=org_a), state=GapState.IN_REVIEW),
        CareGapFactory(
            patient=PatientFactory(organization=org_a),
            state=GapState.SCHEDULED,
            scheduled_for=dt.date(2025, 12, 1),
            primary_source=SourceKind.EHR_LIST,
            **ended,
        ),
        CareGapFactory(patient=PatientFactory(organization=org_a), **ended),
    ]
    for _ in range(4):
        gaps.append(
            CareGapFactory(
                patient=PatientFactory(organization=org_a),
                state=GapState.IN_REVIEW,
                next_step_due=IN_MEASUREMENT_YEAR.date() - dt.timedelta(days=2),
            )
        )
    return gaps


@pytest.mark.parametrize("params", [*PARAMS, {"q": "O'Brien"}])
def test_the_rows_are_exactly_djangos(client, agent_a, varied_gaps, params, monkeypatch):
    monkeypatch.setattr(CareGapAdmin, "list_per_page", 4)
    client.force_login(agent_a)
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    changelist = response.context["cl"]
    expected = ["".join(items_for_result(changelist, gap, None)) for gap in changelist.result_list]
    assert expected, "each case shows rows"
    assert [row for [row] in changelist.table["results"]] == expected
    html = response.content.decode()
    assert all(row in html for row in expected)


def test_the_page_escapes_what_the_patient_record_holds(client, agent_a, varied_gaps):
    client.force_login(agent_a)
    html = client.get(CHANGELIST).content.decode()
    assert "O&#x27;Brien &lt;b&gt;, A &amp; B" in html
    assert "<b>" not in html.split('id="result_list"')[1]


def test_the_list_pages_past_its_capped_count(client, agent_a, org_a, monkeypatch):
    monkeypatch.setattr(CareGapAdmin, "list_per_page", 2)
    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)
    gaps = [CareGapFactory(patient=PatientFactory(organization=org_a)) for _ in range(10)]
    client.force_login(agent_a)
    response = client.get(CHANGELIST, {"p": "4"})  # rows 7 and 8, past the 3 counted
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown == sorted(gaps, key=lambda g: g.pk)[6:8]
    # A page number cannot make the count run on without bound: past REACH it is refused.
    monkeypatch.setattr(CappedCountPaginator, "REACH", 4)
    assert client.get(CHANGELIST, {"p": "4"}).status_code == 302


def test_the_list_joins_only_what_its_rows_show(client, agent_a, varied_gaps):
    client.force_login(agent_a)
    with CaptureQueriesContext(connection) as captured:
        client.get(CHANGELIST)
    [rows] = [
        q["sql"]
        for q in captured.captured_queries
        if "gaps_caregap" in q["sql"]
        and "patients_patient" in q["sql"]
        and "COUNT(" not in q["sql"]
    ]
    assert "gaps_measure" not in rows and 'patients_organization"."name' not in rows


def _queries(client, params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("params", PARAMS)
def test_a_page_costs_the_same_queries_for_a_few_or_many_gaps(
    client, agent_a, org_a, params, monkeypatch
):
    """Every screen of the load test, with 2 and with 12 gaps on the second page (pages of 12
    here): no query per row, for the patient, the owner, the access log or any column."""
    monkeypatch.setattr(CareGapAdmin, "list_per_page", 12)
    states = [GapState.IDENTIFIED, GapState.OUTREACH, GapState.IN_REVIEW]

    def add(count):
        for n in range(count):
            CareGapFactory(
                patient=PatientFactory(organization=org_a),
                measure_code=["CMS130", "CMS125"][n % 2],
                state=states[n % 3],
                owner=agent_a if n % 2 else None,
                next_step_due=IN_MEASUREMENT_YEAR.date() + dt.timedelta(days=n % 9 - 4),
            )

    client.force_login(agent_a)
    add(14)  # page 2 holds 2 gaps, page 1 some of each state
    few = _queries(client, params)
    add(20)  # both pages full
    many = _queries(client, params)
    assert many == few
