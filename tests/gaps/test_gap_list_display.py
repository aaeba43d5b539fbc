"""A gap-list import reads as words in admin: counts and problems, not stored JSON."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from gaps.gap_lists import import_gap_list
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def applied(org_a, supervisor_a):
    PatientFactory(organization=org_a, mrn="A100")
    due = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    text = f"mrn,measure,due_date\nA100,CMS130,{due}\nZ999,CMS130,{due}\n"
    return import_gap_list(
        org_a,
        content=text.encode(),
        file_name="gaps.csv",
        source_name="Blue Horizon MA",
        source_kind="payer_list",
        actor=supervisor_a,
    )


def test_the_import_page_lists_counts_and_problems_in_words(client, supervisor_a, applied):
    client.force_login(supervisor_a)
    url = reverse("admin:gaps_gaplistimport_change", args=[applied.pk])
    html = client.get(url).content.decode().replace("&#x27;", "'")
    assert "2 rows: 1 good, 1 bad; 1 gap opened" in html
    assert "line 3: unknown MRN 'Z999'" in html
    assert "{&quot;" not in html and "[{" not in html


def test_the_import_list_shows_counts_in_words(client, supervisor_a, applied):
    client.force_login(supervisor_a)
    html = client.get(reverse("admin:gaps_gaplistimport_changelist")).content.decode()
    assert "2 rows: 1 good, 1 bad; 1 gap opened" in html
    assert "{&quot;rows&quot;" not in html
