"""Gap screens in admin: scoped, constant queries, transitions through their forms, files, lists."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AccessLog
from gaps.care_gaps import CareGap, GapEvidence, GapListImport, GapState
from tests.conftest import PERSONAS_OF_ORG_A
from tests.gaps.evidence_samples import pdf_bytes, png_bytes
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from tests.patients.factories import PatientFactory

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]
CHANGELIST = reverse("admin:gaps_caregap_changelist")
TODAY = IN_MEASUREMENT_YEAR.date()


def _change(gap):
    return reverse("admin:gaps_caregap_change", args=[gap.pk])


def _transition(gap, service):
    return reverse("admin:gaps_caregap_transition", args=[gap.pk, service])


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"state": "identified"},
        {"measure": "CMS130"},
        {"due": "week"},
        {"source": "engine"},
        {"q": "MRN-NOPE"},
    ],
)
def test_the_changelist_costs_the_same_queries_for_one_or_fifty_gaps(
    client, agent_a, org_a, params, django_assert_max_num_queries
):
    client.force_login(agent_a)
    CareGapFactory(patient=PatientFactory(organization=org_a))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get(CHANGELIST, params).status_code == 200
    for _ in range(49):
        CareGapFactory(patient=PatientFactory(organization=org_a))
    with django_assert_max_num_queries(len(one)):
        response = client.get(CHANGELIST, params)
    assert response.status_code == 200


def test_the_changelist_shows_own_gaps_and_never_counts_the_table(
    client, agent_a, patient_a, patient_b
):
    mine, theirs = CareGapFactory(patient=patient_a), CareGapFactory(patient=patient_b)
    client.force_login(agent_a)
    listed = list(client.get(CHANGELIST).context["cl"].result_list)
    assert listed == [mine]
    assert list(client.get(CHANGELIST, {"q": patient_b.mrn}).context["cl"].result_list) == []
    assert list(client.get(CHANGELIST, {"q": patient_a.mrn}).context["cl"].result_list) == [mine]
    assert client.get(_change(theirs)).status_code == 404
    assert client.get(_transition(theirs, "start_review")).status_code == 404
    assert client.post(_transition(theirs, "start_review"), {}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.state == GapState.IDENTIFIED


@pytest.mark.parametrize("persona_name", PERSONAS_OF_ORG_A)
def test_every_role_sees_only_its_organizations_gaps(
    request, client, persona_name, patient_a, patient_b
):
    mine, theirs = CareGapFactory(patient=patient_a), CareGapFactory(patient=patient_b)
    client.force_login(request.getfixturevalue(persona_name))
    assert list(client.get(CHANGELIST).context["cl"].result_list) == [mine]
    assert client.get(_change(theirs)).status_code == 404
    assert client.get(reverse("admin:gaps_caregap_history", args=[theirs.pk])).status_code == 404


def test_the_gap_page_offers_the_roles_transitions_and_logs_the_read(
    client, agent_a, auditor_a, patient_a
):
    gap = CareGapFactory(patient=patient_a, state=GapState.OUTREACH)
    client.force_login(agent_a)
    html = client.get(_change(gap)).content.decode()
    for service in (
        "mark_scheduled",
        "mark_declined",
        "mark_unreachable",
        "flag_for_review",
        "mark_not_a_gap",
    ):
        assert f'data-transition="{service}"' in html
    assert 'data-transition="close_gap"' not in html
    assert AccessLog.objects.filter(user=agent_a, action="view", object_ids=[gap.pk]).exists()

    client.force_login(auditor_a)
    html = client.get(_change(gap)).content.decode()
    assert "data-transition=" not in html
    assert client.get(_transition(gap, "mark_scheduled")).status_code == 403


def test_an_agent_works_a_gap_through_the_forms(client, agent_a, patient_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    gap = CareGapFactory(patient=patient_a, state=GapState.IN_REVIEW)
    client.force_login(agent_a)
    steps = [
        ("validate_gap", {}),
        ("record_outreach_started", {"channel": "phone", "next_attempt_on": ""}),
        ("mark_scheduled", {"appointment_on": TODAY.isoformat()}),
        ("mark_completed", {"completed_on": TODAY.isoformat()}),
        (
            "close_gap",
            {
                "service_date": TODAY.isoformat(),
                "evidence_kind": "lab_result",
                "attachment": SimpleUploadedFile("r.pdf", pdf_bytes()),
            },
        ),
    ]
    for service, data in steps:
        response = client.post(_transition(gap, service), data)
        assert response.status_code == 302, (service, response.content.decode()[:3000])
    gap.refresh_from_db()
    assert gap.state == GapState.CLOSED
    assert [v.state for v in gap.history.order_by("history_date", "history_id")] == [
        "in_review",
        "validated",
        "outreach",
        "scheduled",
        "completed",
        "closed",
    ]
    assert {v.history_user for v in gap.history.all()[:5]} == {agent_a}


def test_a_refused_closure_shows_the_reason_and_changes_nothing(client, agent_a, patient_a):
    gap = CareGapFactory(patient=patient_a, measure_code="CMS125", state=GapState.COMPLETED)
    client.force_login(agent_a)
    response = client.post(
        _transition(gap, "close_gap"),
        {
            "service_date": "2023-01-15",
            "evidence_kind": "screening_confirmation",
            "reference": "MAMMO-1",
        },
    )
    assert response.status_code == 200
    assert "must be between 2024-10-01 and 2026-12-31" in response.content.decode()
    assert CareGap.objects.get().state == GapState.COMPLETED
    assert not GapEvidence.objects.exists()


def test_a_transition_not_open_in_this_state_is_refused_with_a_message(client, agent_a, patient_a):
    gap = CareGapFactory(patient=patient_a, state=GapState.IDENTIFIED)
    client.force_login(agent_a)
    response = client.post(_transition(gap, "close_gap"), {}, follow=True)
    assert "cannot close gap now" in response.content.decode()
    assert CareGap.objects.get().state == GapState.IDENTIFIED


def test_evidence_files_are_served_only_inside_the_organization(
    client, agent_a, agent_b, patient_a, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    gap = CareGapFactory(patient=patient_a, state=GapState.COMPLETED)
    client.force_login(agent_a)
    client.post(
        _transition(gap, "close_gap"),
        {
            "service_date": TODAY.isoformat(),
            "evidence_kind": "lab_result",
            "attachment": SimpleUploadedFile("x.png", png_bytes()),
        },
    )
    evidence = GapEvidence.objects.get()
    url = reverse("admin:gaps_gapevidence_file", args=[evidence.pk])

    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response["Content-Disposition"]
    assert AccessLog.objects.filter(user=agent_a, action="export").exists()

    client.force_login(agent_b)
    assert client.get(url).status_code == 404


def test_a_supervisor_uploads_previews_and_applies_a_gap_list(client, supervisor_a, org_a):
    PatientFactory(organization=org_a, mrn="A100")
    client.force_login(supervisor_a)
    csv = b"mrn,measure,due_date\nA100,CMS130,2026-12-31\nZ9,CMS130,2026-12-31\n"
    response = client.post(
        reverse("admin:gaps_gaplistimport_add"),
        {
            "file": SimpleUploadedFile("list.csv", csv),
            "organization": org_a.pk,
            "source_name": "Blue Horizon",
            "source_kind": "payer_list",
        },
    )
    record = GapListImport.objects.get()
    assert response.status_code == 302
    preview = client.get(reverse("admin:gaps_gaplistimport_preview", args=[record.pk]))
    html = preview.content.decode()
    assert "unknown MRN &#x27;Z9&#x27;" in html and "A100" in html
    assert not CareGap.objects.exists()  # nothing applied yet

    client.post(reverse("admin:gaps_gaplistimport_preview", args=[record.pk]))
    record.refresh_from_db()
    assert record.status == GapListImport.Status.APPLIED
    assert CareGap.objects.get().patient.mrn == "A100"


def test_agents_cannot_upload_gap_lists(client, agent_a, org_a):
    client.force_login(agent_a)
    assert client.get(reverse("admin:gaps_gaplistimport_add")).status_code == 403
