"""Outreach screens: scoped to the user's organizations, role-checked, constant queries."""

import datetime as dt

import pytest

from gaps.care_gaps import GapState
from outreach.models import Appointment, MessageTemplate, OutreachAttempt, Step
from outreach.services import appointments, outbox
from tests.outreach.conftest import IN_MEASUREMENT_YEAR, gap_for

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True)]
ATTEMPTS = "/admin/outreach/outreachattempt/"


def plan_dormant(patient, actor, n=0):
    attempt, _ = outbox.plan_attempt(
        patient, step=Step.DORMANT, window=f"w{n}", channel="sms", actor=actor
    )
    return attempt


def test_the_attempt_log_is_scoped_and_another_client_gets_404(
    client, templates, patient_factory, system_user, agent_a, agent_b
):
    patient = patient_factory()
    attempt = plan_dormant(patient, system_user)
    client.force_login(agent_a)
    assert f"#{attempt.pk}" in client.get(ATTEMPTS).content.decode()
    assert client.get(f"{ATTEMPTS}{attempt.pk}/change/").status_code == 200
    client.force_login(agent_b)
    assert f"#{attempt.pk}" not in client.get(ATTEMPTS).content.decode()
    assert client.get(f"{ATTEMPTS}{attempt.pk}/change/").status_code == 404
    assert client.get(f"{ATTEMPTS}log-call/{patient.pk}/").status_code == 404
    assert client.post(f"{ATTEMPTS}send-link/{patient.pk}/").status_code == 404


def test_the_attempt_log_costs_the_same_for_1_and_50_rows(
    client, templates, patient_factory, system_user, agent_a, django_assert_max_num_queries
):
    patients = [patient_factory() for _ in range(50)]
    plan_dormant(patients[0], system_user)
    client.force_login(agent_a)
    with django_assert_max_num_queries(20) as one:
        assert client.get(ATTEMPTS).status_code == 200
    for n, patient in enumerate(patients[1:]):
        plan_dormant(patient, system_user, n)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert client.get(ATTEMPTS).status_code == 200


def test_an_agent_logs_a_call_in_one_form_and_an_auditor_may_not(
    client, templates, patient_factory, agent_a, auditor_a, site_a
):
    patient = patient_factory()
    gap = gap_for(patient)
    url = f"{ATTEMPTS}log-call/{patient.pk}/?gap={gap.pk}"
    client.force_login(auditor_a)
    assert client.get(url).status_code == 403
    client.force_login(agent_a)
    missing_site = client.post(url, {"outcome": "reached_scheduled", "gaps": [gap.pk]})
    assert missing_site.status_code == 200
    assert "Needed to book the appointment" in missing_site.content.decode()
    response = client.post(
        url,
        {
            "outcome": "reached_scheduled",
            "gaps": [gap.pk],
            "site": site_a.pk,
            "starts_at": "2026-06-20T10:30",
            "kind": "visit",
        },
    )
    assert response.status_code == 302 and response.url.endswith(f"/caregap/{gap.pk}/change/")
    gap.refresh_from_db()
    assert gap.state == GapState.SCHEDULED
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.starts_at == dt.datetime(2026, 6, 20, 14, 30, tzinfo=dt.UTC)  # EDT


def test_a_general_template_naming_a_test_is_refused_in_admin_with_the_word(
    client, supervisor_a, org_a
):
    client.force_login(supervisor_a)
    data = {
        "organization": org_a.pk,
        "name": "Colon screening text",
        "purpose": "gap_outreach",
        "channel": "sms",
        "language": "en",
        "content_class": "general",
        "body": "Your colonoscopy is due, {{ patient_first_name }}",
        "is_active": "on",
        "change_reason": "new template",
    }
    response = client.post("/admin/outreach/messagetemplate/add/", data)
    assert response.status_code == 200
    assert "&#x27;colonoscopy&#x27;" in response.content.decode()
    assert not MessageTemplate.objects.exists()
    data["body"] = "You are due for a health screening, {{ patient_first_name }}"
    assert client.post("/admin/outreach/messagetemplate/add/", data).status_code == 302
    template = MessageTemplate.objects.get()
    page = client.get(f"/admin/outreach/messagetemplate/{template.pk}/change/").content.decode()
    assert "You are due for a health screening, Maria" in page  # the preview, sample values


def test_appointment_actions_refuse_what_the_service_refuses(
    client, templates, patient_factory, agent_a, site_a
):
    patient = patient_factory()
    appointment = appointments.book_appointment(
        patient,
        actor=agent_a,
        site_id=site_a.pk,
        starts_at=IN_MEASUREMENT_YEAR + dt.timedelta(days=2),
    )
    client.force_login(agent_a)
    base = f"/admin/outreach/appointment/{appointment.pk}/act/"
    early = client.post(f"{base}complete/", {"reason": ""})
    assert "before it starts" in early.content.decode()
    assert client.post(f"{base}cancel/", {"reason": ""}).status_code == 200
    assert client.post(f"{base}cancel/", {"reason": "patient asked"}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    listing = client.get(f"/admin/outreach/appointment/?day=week&site={site_a.pk}")
    assert f"#{appointment.pk}" in listing.content.decode()
    assert "Cancelled" in listing.content.decode()


def test_appointments_of_another_client_are_invisible(
    client, templates, patient_factory, agent_a, agent_b, site_a
):
    appointment = appointments.book_appointment(
        patient_factory(),
        actor=agent_a,
        site_id=site_a.pk,
        starts_at=IN_MEASUREMENT_YEAR + dt.timedelta(days=2),
    )
    client.force_login(agent_b)
    assert client.get(f"/admin/outreach/appointment/{appointment.pk}/change/").status_code == 404
    assert (
        client.post(
            f"/admin/outreach/appointment/{appointment.pk}/act/cancel/", {"reason": "x"}
        ).status_code
        == 404
    )
    assert f"#{appointment.pk}" not in client.get("/admin/outreach/appointment/").content.decode()
    appointment.refresh_from_db()
    assert appointment.status == "booked"


def test_the_preferences_link_is_sent_on_a_permitted_channel(
    client, templates, patient_factory, agent_a
):
    patient = patient_factory(consents=("email",))
    client.force_login(agent_a)
    response = client.post(f"{ATTEMPTS}send-link/{patient.pk}/")
    assert response.status_code == 302
    attempt = OutreachAttempt.objects.get(patient=patient, step=Step.SELF_SERVICE_LINK)
    assert attempt.channel in ("email", "letter")
    assert outbox.send_attempt(attempt.pk) == "sent"
    attempt.refresh_from_db()
    assert "/preferences/" in attempt.rendered_text
    blocked = patient_factory(consents=(), do_not_contact=True)
    client.post(f"{ATTEMPTS}send-link/{blocked.pk}/")
    assert not OutreachAttempt.objects.filter(patient=blocked).exists()
