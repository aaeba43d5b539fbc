"""Lists fit for a million patients: a fixed number of queries whatever the page holds, and no
COUNT(*) over the whole table."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carehub.admin_base import CappedCountPaginator
from tests.patients.factories import PatientFactory, PayerProgramFactory, SiteFactory

pytestmark = pytest.mark.django_db


def changelist_queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured.captured_queries)


def make_patients(org, count):
    site = SiteFactory(organization=org)
    program = PayerProgramFactory(organization=org)
    PatientFactory.create_batch(
        count, organization=org, attributed_site=site, payer_program=program
    )


@pytest.mark.parametrize("params", [{}, {"q": "MRN"}, {"status": "active"}])
def test_patient_changelist_query_count_does_not_grow_with_rows(client, agent_a, org_a, params):
    url = reverse("admin:patients_patient_changelist")
    client.force_login(agent_a)
    make_patients(org_a, 1)
    # The process's first request fills caches (content types) with a query of its own: run
    # alone, this test would count it against the one-row page.
    changelist_queries(client, url, params)
    with_one = changelist_queries(client, url, params)
    make_patients(org_a, 49)
    with_fifty = changelist_queries(client, url, params)
    assert with_fifty == with_one


def test_changelist_never_counts_the_whole_table(client, agent_a, org_a):
    make_patients(org_a, 3)
    client.force_login(agent_a)
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("admin:patients_patient_changelist"))
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the capped count should run"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_capped_paginator_stops_counting_at_the_cap(org_a, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 5)
    make_patients(org_a, 8)
    from patients.models import Patient

    paginator = CappedCountPaginator(Patient.objects.order_by("pk"), 2)
    assert paginator.count == 6  # "more than 5"
    assert paginator.num_pages == 3


def test_access_log_changelist_query_count_does_not_grow(client, agent_a, auditor_a, org_a):
    make_patients(org_a, 1)
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_changelist"))
    client.force_login(auditor_a)
    url = reverse("admin:audit_accesslog_changelist")
    with_one = changelist_queries(client, url)
    client.force_login(agent_a)
    for _ in range(49):
        client.get(reverse("admin:patients_patient_changelist"))
    client.force_login(auditor_a)
    assert changelist_queries(client, url) == with_one


def test_list_says_more_than_the_cap_where_counting_stopped(client, agent_a, org_a, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)
    monkeypatch.setattr(CappedCountPaginator, "REACH", 0)  # else page 1 counts to its 50 rows
    make_patients(org_a, 5)
    client.force_login(agent_a)
    page = client.get(reverse("admin:patients_patient_changelist"), {"status": "active"})
    text = page.content.decode()
    assert "more than 3 results" in text
    assert "more than 3 patients" in text
    assert "4 results" not in text  # the count query's one-past-the-cap


def test_list_under_the_cap_says_its_count(client, agent_a, org_a):
    make_patients(org_a, 2)
    client.force_login(agent_a)
    page = client.get(reverse("admin:patients_patient_changelist"), {"status": "active"})
    text = page.content.decode()
    assert "2 results" in text
    assert "more than" not in text
