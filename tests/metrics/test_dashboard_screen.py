"""The supervisor dashboard in admin: who may open it, what it shows, the CSV export."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from metrics import snapshots
from metrics.models import TransitionDay
from tests.gaps.factories import CareGapFactory

pytestmark = pytest.mark.django_db
URL = reverse("admin:metrics_dashboard_changelist")


@pytest.fixture
def snapshot(org_a, org_b, supervisor_a, patient_a):
    today = timezone.now().date()
    for org, n in ((org_a, 3), (org_b, 7)):
        TransitionDay.objects.create(
            day=today,
            organization=org,
            measure_code="CMS130",
            actor=supervisor_a,
            from_state="",
            to_state="identified",
            gaps=n,
        )
    CareGapFactory(patient=patient_a)
    snapshots.take_snapshot(today, events_day=today - dt.timedelta(days=1))
    snapshots.roll_up_month(today)  # the rows written by hand above


def funnel_of(response) -> dict:
    return {step["state"]: step["count"] for step in response.context["board"].funnel}


def test_a_supervisor_sees_the_figures_of_own_organizations_only(client, supervisor_a, snapshot):
    client.force_login(supervisor_a)
    response = client.get(URL)
    assert response.status_code == 200
    assert funnel_of(response)["identified"] == 3
    text = response.content.decode()
    assert "Contact rate" in text and "Attempts whose outcome reached the patient" in text
    assert "metrics/vendor/chartjs/chart.umd.min.js" in text
    assert "cdn" not in text.lower()


def test_another_organization_cannot_be_asked_for(client, supervisor_a, org_b, snapshot):
    client.force_login(supervisor_a)
    response = client.get(URL, {"organization": org_b.pk})
    assert response.status_code == 200
    assert response.context["board"] is None
    assert "Select a valid choice" in response.content.decode()


def test_the_supervisor_of_org_b_sees_org_b(client, persona, org_b, snapshot):
    client.force_login(persona("supervisor", org_b))
    assert funnel_of(client.get(URL))["identified"] == 7


@pytest.mark.parametrize("who", ["agent_a", "coordinator_a", "auditor_a", "administrator_a"])
def test_other_roles_cannot_open_the_dashboard(request, client, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"format": "csv"}).status_code == 403


def test_csv_export_carries_the_rates_and_their_definitions(client, supervisor_a, snapshot):
    client.force_login(supervisor_a)
    response = client.get(URL, {"format": "csv"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    funnel = {r["name"]: r["numerator_or_count"] for r in rows if r["section"] == "funnel"}
    assert funnel["Identified"] == "3"
    rates = {r["name"]: r for r in rows if r["section"] == "rate"}
    assert "Contact rate" in rates and rates["Contact rate"]["note"].startswith("Attempts")


def test_bad_months_are_refused_with_a_message(client, supervisor_a):
    client.force_login(supervisor_a)
    for params, message in (
        ({"start": "2026-13"}, "A month is YYYY-MM"),
        ({"start": "2026-05", "end": "2026-01"}, "after the last month"),
        ({"start": "2020-01", "end": "2026-01"}, "At most 36 months"),
    ):
        response = client.get(URL, params)
        assert response.status_code == 200
        assert message in response.content.decode()


def test_the_dashboard_reads_a_fixed_number_of_queries(
    client, supervisor_a, snapshot, django_assert_max_num_queries
):
    client.force_login(supervisor_a)
    with django_assert_max_num_queries(30):
        client.get(URL)


def test_the_demo_has_dashboard_figures(settings, client):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    settings.DEBUG = True
    call_command("seed_demo", patients=40, stdout=io.StringIO())
    client.force_login(get_user_model().objects.get(username="supervisor"))
    board = client.get(URL).context["board"]
    assert {step["state"]: step["count"] for step in board.funnel}["identified"] > 0
    # The demo's calls (logged over the days before the seed) are counted too.
    contact = next(row["ratio"] for row in board.rates if row["rate"].key == "contact")
    assert contact.denominator > 0
