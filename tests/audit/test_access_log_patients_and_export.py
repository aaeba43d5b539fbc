"""Every PHI read names the patients behind it; the log filters by dates and patient, and
exports what the filters show."""

import csv
import datetime as dt
import io

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from gaps import workflow
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:audit_accesslog_changelist"


def test_reading_a_gap_is_a_read_of_its_patient(client, agent_a, patient_a):
    gap = CareGapFactory(patient=patient_a)
    client.force_login(agent_a)
    client.get(reverse("admin:gaps_caregap_change", args=[gap.pk]))
    entry = AccessLog.objects.get(model="gaps.caregap", action="view")
    assert (entry.object_ids, entry.patient_ids) == ([gap.pk], [patient_a.pk])


# The factory's gaps belong to 2026; the list shows open work of periods that can still close.
@pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)
def test_a_gap_list_names_each_patient_once(client, agent_a, patient_a, org_a):
    from tests.patients.factories import PatientFactory

    other = PatientFactory(organization=org_a)
    CareGapFactory(patient=patient_a, measure_code="CMS130")
    CareGapFactory(patient=patient_a, measure_code="CMS125")
    CareGapFactory(patient=other, measure_code="CMS130")
    client.force_login(agent_a)
    client.get(reverse("admin:gaps_caregap_changelist"))
    entry = AccessLog.objects.get(model="gaps.caregap", action="list")
    assert entry.object_count == 3
    assert sorted(entry.patient_ids) == sorted([patient_a.pk, other.pk])


def test_an_evidence_download_names_the_patient_through_its_gap(patient_a, agent_a):
    from audit.relations import patient_ids_by_record
    from gaps.care_gaps import GapEvidence

    gap = CareGapFactory(patient=patient_a)
    evidence = GapEvidence(
        organization=patient_a.organization,
        gap=gap,
        kind="lab_result",
        added_at=timezone.now(),
        added_by=agent_a,
    )
    evidence.save()
    assert patient_ids_by_record([evidence]) == {("gaps.gapevidence", evidence.pk): patient_a.pk}


def test_patient_search_finds_reads_of_the_patient_and_of_their_gaps(
    client, agent_a, auditor_a, patient_a, org_a
):
    from tests.patients.factories import PatientFactory

    other = PatientFactory(organization=org_a)
    gap = CareGapFactory(patient=patient_a)
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    client.get(reverse("admin:gaps_caregap_change", args=[gap.pk]))
    client.get(reverse("admin:patients_patient_change", args=[other.pk]))

    client.force_login(auditor_a)
    response = client.get(reverse(CHANGELIST), {"q": f"patient:{patient_a.pk}"})
    rows = response.context["cl"].result_list
    assert sorted(row.model for row in rows) == ["gaps.caregap", "patients.patient"]
    bad = client.get(reverse(CHANGELIST), {"q": "patient:abc"})
    assert bad.status_code in (200, 302)  # Django's "invalid filter" page, never a 500


def test_the_date_range_filter_keeps_whole_days(client, agent_a, auditor_a, patient_a):
    today = timezone.now().replace(hour=12, minute=0)
    for days_ago in (10, 5, 1):
        with time_machine.travel(today - dt.timedelta(days=days_ago), tick=False):
            client.force_login(agent_a)  # a fresh session: idle ones end after 15 minutes
            client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    client.force_login(auditor_a)
    start = (today - dt.timedelta(days=6)).date().isoformat()
    end = (today - dt.timedelta(days=1)).date().isoformat()
    response = client.get(reverse(CHANGELIST), {"at_from": start, "at_to": end})
    days = sorted((today.date() - row.at.date()).days for row in response.context["cl"].result_list)
    assert days == [1, 5]
    assert 'type="date"' in response.content.decode()
    assert client.get(reverse(CHANGELIST), {"at_from": "yesterday"}).status_code in (200, 302)


def test_export_follows_the_filters_guards_formulas_and_is_logged(
    client, agent_a, agent_b, auditor_a, patient_a, patient_b
):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    AccessLog.objects.create(  # a search whose terms a spreadsheet would run as a formula
        user=agent_a,
        organization=patient_a.organization,
        action="search",
        channel="api",
        model="patients.patient",
        query="=cmd|calc",
        path="/api/patients/",
    )
    client.force_login(agent_b)
    client.get(reverse("admin:patients_patient_change", args=[patient_b.pk]))

    client.force_login(auditor_a)
    response = client.get(reverse("admin:audit_accesslog_export"), {"action": "view"})
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["user"], r["action"], r["patient_ids"]) for r in rows] == [
        (agent_a.username, "view", str(patient_a.pk))
    ]
    everything = client.get(reverse("admin:audit_accesslog_export"))
    text = b"".join(everything.streaming_content).decode()
    assert ",'=cmd|calc," in text
    assert agent_b.username not in text
    assert AccessLog.objects.filter(user=auditor_a, action="export").count() == 2


@pytest.mark.parametrize("who", ["agent_a", "supervisor_a", "coordinator_a", "administrator_a"])
def test_only_auditors_read_or_export_the_log(request, client, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse("admin:audit_accesslog_export")).status_code == 403


def test_the_auditor_of_another_organization_sees_none_of_it(
    client, agent_a, patient_a, persona, org_b
):
    client.force_login(agent_a)
    client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))
    auditor_b = persona("auditor", org_b)
    client.force_login(auditor_b)
    assert list(client.get(reverse(CHANGELIST)).context["cl"].result_list) == []
    text = b"".join(client.get(reverse("admin:audit_accesslog_export")).streaming_content)
    assert agent_a.username.encode() not in text


def test_workflow_reads_still_log_after_a_transition(client, agent_a, patient_a):
    gap = CareGapFactory(patient=patient_a)
    workflow.start_review(gap, actor=agent_a)
    client.force_login(agent_a)
    client.get(reverse("admin:gaps_caregap_history", args=[gap.pk]))
    entry = AccessLog.objects.get(action="history")
    assert entry.patient_ids == [patient_a.pk]
