"""The patient timeline: every change to every record of a patient and every read of them, in
order, with actor, path, old -> new values and reason; filters; CSV/JSON/PDF exports."""

import csv
import datetime as dt
import io
import json

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from audit import timeline
from audit.models import AccessLog
from consent import services as consent_services
from consent.models import ChangePath, Consent
from gaps import workflow
from gaps.care_gaps import GapEvidence
from outreach.services.appointments import book_appointment
from outreach.services.calls import log_call
from tests.gaps.factories import IN_MEASUREMENT_YEAR
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db
TODAY = IN_MEASUREMENT_YEAR.date()


def timeline_url(patient, **params):
    from django.utils.http import urlencode

    url = reverse("admin:audit_patienttimeline_timeline", args=[patient.pk])
    return url + ("?" + urlencode(params) if params else "")


@pytest.fixture
def worked_patient(client, patient_a, supervisor_a, agent_a):
    """A patient touched by staff in admin, services, automation and the patient themself, one
    minute apart, so the expected order is known."""
    with time_machine.travel(IN_MEASUREMENT_YEAR, tick=False) as clock:

        def step():
            clock.shift(dt.timedelta(minutes=1))

        client.force_login(agent_a)
        step()
        client.get(reverse("admin:patients_patient_change", args=[patient_a.pk]))  # read
        step()
        gap = workflow.open_gap(
            patient_a, measure_code="CMS130", actor=supervisor_a, reason="Seen on the chart"
        )
        step()
        gap = workflow.start_review(gap, actor=agent_a)
        step()
        gap = workflow.validate_gap(gap, actor=agent_a)
        step()
        client.get(reverse("admin:gaps_caregap_change", args=[gap.pk]))  # read of the gap
        step()
        consent_services.grant_consent(
            patient_a,
            kind=Consent.Kind.EMAIL,
            method=Consent.Method.WRITTEN_FORM,
            actor=agent_a,
            path=ChangePath.ADMIN,
            reason="Signed the form at the desk",
        )
        step()
        consent_services.update_preferences(
            patient_a, actor=None, path=ChangePath.SELF_SERVICE, opted_out_channels=["sms"]
        )
        step()
        gap = workflow.record_outreach_started(gap, actor=agent_a, channel="phone")
        step()
        log_call(patient_a, actor=agent_a, outcome="no_answer", gaps=[gap])
        step()
        book_appointment(
            patient_a,
            actor=agent_a,
            site_id=patient_a.attributed_site_id,
            starts_at=timezone.now() + dt.timedelta(days=1),
        )
        step()
        gap.refresh_from_db()
        gap = workflow.mark_scheduled(gap, actor=agent_a, appointment_on=TODAY)
        step()
        gap = workflow.mark_completed(gap, actor=agent_a, completed_on=TODAY)
        step()
        gap = workflow.close_gap(
            gap,
            actor=agent_a,
            service_date=TODAY,
            evidence_kind=GapEvidence.Kind.LAB_RESULT,
            reference="ACC-1",
        )
    client.logout()
    return patient_a, gap


def test_every_event_appears_in_order_with_its_actor_and_path(worked_patient, agent_a):
    patient, _gap = worked_patient
    events = timeline.patient_timeline(patient)
    summary = [(e.kind, e.model, e.action, e.actor, e.path) for e in events]
    assert summary[0] == ("read", "patients.patient", "view", agent_a.username, "admin")
    assert [e.at for e in events] == sorted(e.at for e in events)

    changes = [e for e in events if e.kind == "change"]
    gap_states = [
        {f: n for f, _o, n in e.changes}.get("state") for e in changes if e.model == "gaps.caregap"
    ]
    assert [s for s in gap_states if s] == [
        "identified",
        "in_review",
        "validated",
        "outreach",
        "scheduled",
        "completed",
        "closed",
    ]
    gap_rows = [e for e in changes if e.model == "gaps.caregap"]
    assert gap_rows[0].actor == "supervisor-org-a" and gap_rows[0].action == "created"
    assert gap_rows[0].reason == "Seen on the chart"
    assert {e.actor for e in gap_rows[1:]} == {agent_a.username}
    # old -> new: the second row says where the state came from
    assert ("state", "identified", "in_review") in gap_rows[1].changes

    consent = next(e for e in changes if e.model == "consent.consent")
    assert (consent.actor, consent.path, consent.reason) == (
        agent_a.username,
        "admin",
        "Signed the form at the desk",
    )
    (preference,) = [
        e
        for e in changes
        if e.model == "consent.contactpreference"
        and ("opted_out_channels", "[]", "['sms']") in e.changes
    ]
    assert (preference.actor, preference.path) == ("Patient (self-service)", "self-service")

    evidence = next(e for e in changes if e.model == "gaps.gapevidence")
    assert ("reference", "—", "ACC-1") in evidence.changes

    # every part of the product that touched the patient is there, each event with its actor
    assert {e.model for e in changes} >= {
        "patients.patient",
        "gaps.caregap",
        "gaps.gapsource",
        "gaps.gapevidence",
        "consent.consent",
        "consent.contactpreference",
        "outreach.outreachattempt",
        "outreach.appointment",
        "worklists.workitem",
    }
    assert all(e.actor and e.path for e in events)
    call = next(e for e in changes if e.model == "outreach.outreachattempt")
    assert (call.actor, ("outcome", "—", "no_answer") in call.changes) == (agent_a.username, True)

    # the read of the gap is a read of the patient
    reads = [e for e in events if e.kind == "read"]
    assert [(e.model, e.action) for e in reads] == [
        ("patients.patient", "view"),
        ("gaps.caregap", "view"),
    ]
    # gap read sits between validation and the consent, as it happened
    order = [(e.kind, e.model) for e in events]
    assert order.index(("read", "gaps.caregap")) < order.index(("change", "consent.consent"))


def test_automation_and_import_paths_are_named(patient_a, system_user, supervisor_a):
    gap = workflow.open_gap(
        patient_a, measure_code="CMS125", actor=supervisor_a, reason="Gap list import #4"
    )
    workflow.flag_for_review(gap, actor=system_user, reason="Two attempts without answer")
    events = [e for e in timeline.patient_timeline(patient_a) if e.model == "gaps.caregap"]
    assert [(e.actor, e.path) for e in events] == [
        ("supervisor-org-a", "import"),
        ("carehub-system", "automation"),
    ]


def test_an_api_change_is_recorded_as_api(client, patient_a, agent_a):
    client.force_login(agent_a)
    response = client.patch(
        f"/api/patients/{patient_a.pk}/preferences/",
        data=json.dumps({"reason": "Asked by phone", "portal_only": True}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    events = [
        e for e in timeline.patient_timeline(patient_a) if e.model == "consent.contactpreference"
    ]
    assert ("portal_only", "False", "True") in events[-1].changes
    assert {(e.path, e.actor) for e in events} == {("api", agent_a.username)}


def test_the_admin_screen_filters_by_kind_actor_and_dates(
    client, worked_patient, auditor_a, supervisor_a
):
    patient, _gap = worked_patient
    client.force_login(auditor_a)
    everything = client.get(timeline_url(patient)).context["events"]
    assert len(everything) > 10

    reads = client.get(timeline_url(patient, kind="read")).context["events"]
    assert {e.kind for e in reads} == {"read"}

    consents = client.get(timeline_url(patient, record="consent.consent")).context["events"]
    assert consents and {e.model for e in consents} == {"consent.consent"}
    gap_reads = client.get(timeline_url(patient, record="gaps.caregap", kind="read"))
    assert [(e.model, e.kind) for e in gap_reads.context["events"]] == [("gaps.caregap", "read")]
    assert client.get(timeline_url(patient, record="auth.user")).context["events"] == []

    by_supervisor = client.get(timeline_url(patient, actor=supervisor_a.username)).context["events"]
    # the gap and what came with it (its source; a work item once worklists exist)
    assert {(e.model, e.action) for e in by_supervisor} >= {
        ("gaps.caregap", "created"),
        ("gaps.gapsource", "created"),
    }
    assert {e.actor for e in by_supervisor} == {supervisor_a.username}
    assert "gaps.caregap" not in {e.model for e in by_supervisor if e.action == "changed"}

    day = IN_MEASUREMENT_YEAR.date()
    that_day = client.get(timeline_url(patient, start=day, end=day)).context["events"]
    assert that_day and {e.at.date() for e in that_day} == {day}
    assert len(that_day) == len([e for e in everything if e.at.date() == day])
    # the patient's registration happened on another (the real) day: outside the range
    assert ("patients.patient", "created") not in {(e.model, e.action) for e in that_day}

    unknown = client.get(timeline_url(patient, actor="nobody-here"))
    assert unknown.status_code == 200
    assert "No user named" in unknown.content.decode()
    backwards = client.get(timeline_url(patient, start="2026-06-10", end="2026-06-01"))
    assert "before the start date" in backwards.content.decode()
    assert backwards.context["events"] == []


def test_exports_round_trip_and_are_logged(client, worked_patient, auditor_a):
    patient, _gap = worked_patient
    client.force_login(auditor_a)
    shown = client.get(timeline_url(patient)).context["events"]

    as_json = json.loads(client.get(timeline_url(patient, format="json")).content)
    assert as_json["subject"]["patient_id"] == patient.pk
    # everything shown, then the auditor's own opening of the page (itself a logged read)
    assert as_json["events"][:-1] == [e.as_dict() for e in shown]
    assert (as_json["events"][-1]["actor"], as_json["events"][-1]["action"]) == (
        auditor_a.username,
        "history",
    )

    response = client.get(timeline_url(patient, format="csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    exported = as_json["events"]
    assert len(rows) == len(exported) + 1  # + the JSON export, logged
    assert [(r["at"], r["kind"], r["actor"], r["path"], r["reason"]) for r in rows[:-1]] == [
        (e["at"], e["kind"], e["actor"], e["path"], e["reason"]) for e in exported
    ]
    changes = [json.loads(r["changes"]) if r["changes"] else [] for r in rows[:-1]]
    assert changes == [[[c["field"], c["old"], c["new"]] for c in e["changes"]] for e in exported]

    pdf = client.get(timeline_url(patient, format="pdf"))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert len(pdf.content) > 2000

    exports = AccessLog.objects.filter(user=auditor_a, action="export")
    assert exports.count() == 3
    assert all(entry.patient_ids == [patient.pk] for entry in exports)


def test_a_csv_export_cannot_smuggle_a_formula(client, patient_a, supervisor_a, auditor_a):
    workflow.open_gap(
        patient_a, measure_code="CMS130", actor=supervisor_a, reason='=HYPERLINK("x")'
    )
    client.force_login(auditor_a)
    response = client.get(timeline_url(patient_a, format="csv"))
    text = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in text


def test_another_organizations_patient_is_not_found(client, auditor_a, patient_b):
    client.force_login(auditor_a)
    assert client.get(timeline_url(patient_b)).status_code == 404
    assert client.get(timeline_url(patient_b, format="json")).status_code == 404
    assert not AccessLog.objects.filter(user=auditor_a).exists()


@pytest.mark.parametrize("who", ["agent_a", "supervisor_a", "coordinator_a", "administrator_a"])
def test_only_auditors_open_timelines(request, client, who, patient_a):
    client.force_login(request.getfixturevalue(who))
    assert client.get(timeline_url(patient_a)).status_code == 403
    assert client.get(reverse("admin:audit_patienttimeline_changelist")).status_code == 403


def test_the_patient_picker_lists_own_patients_only_and_logs_the_list(
    client, auditor_a, patient_a, patient_b
):
    PatientFactory(organization=patient_a.organization)
    client.force_login(auditor_a)
    response = client.get(reverse("admin:audit_patienttimeline_changelist"))
    shown = {p.pk for p in response.context["cl"].result_list}
    assert patient_a.pk in shown and patient_b.pk not in shown
    assert AccessLog.objects.filter(user=auditor_a, action="list").exists()


def test_the_timeline_reads_a_fixed_number_of_queries(
    client, auditor_a, patient_a, supervisor_a, django_assert_max_num_queries
):
    client.force_login(auditor_a)
    for code in ("CMS130", "CMS125"):
        gap = workflow.open_gap(patient_a, measure_code=code, actor=supervisor_a, reason="x")
        workflow.start_review(gap, actor=supervisor_a)
    client.get(timeline_url(patient_a))
    with django_assert_max_num_queries(40) as few:
        client.get(timeline_url(patient_a))
    for code in ("CMS124", "CMS165", "CMS122"):
        gap = workflow.open_gap(patient_a, measure_code=code, actor=supervisor_a, reason="x")
        gap = workflow.start_review(gap, actor=supervisor_a)
        workflow.validate_gap(gap, actor=supervisor_a)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(timeline_url(patient_a))
