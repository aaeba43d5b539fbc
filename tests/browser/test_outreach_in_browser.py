"""An agent logs a call "reached and scheduled" and books the visit in the same form, in
chromium; the gap shows scheduled. The same agent cannot move a do-not-contact patient's gap into
outreach: it goes to coordinator review with the reason. Screenshots land in
$CAREHUB_SCREENSHOTS (when set) at 1366x768."""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone

from consent.services import update_preferences
from gaps.care_gaps import GapState
from outreach.models import Appointment, AttemptStatus, OutreachAttempt
from tests.gaps.factories import CareGapFactory
from tests.patients.factories import PatientFactory, ProviderFactory, SiteFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def daytime_zone() -> str:
    """A time zone where it is early afternoon now, so the call is inside calling hours."""
    offset = (13 - timezone.now().hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def shot(page, name: str) -> None:
    folder = os.environ.get("CAREHUB_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def test_agent_books_on_a_call_and_cannot_start_outreach_for_do_not_contact(
    signed_in, agent_a, org_a, system_user
):
    site = SiteFactory(organization=org_a, name="Riverside Main Clinic", timezone="America/Chicago")
    provider = ProviderFactory(organization=org_a, site=site, family_name="Chen", given_name="Lee")
    zone = daytime_zone()
    patient = PatientFactory(organization=org_a, phone="+16175550199", timezone=zone)
    gap = CareGapFactory(
        patient=patient,
        state=GapState.VALIDATED,
        period_start=timezone.localdate().replace(month=1, day=1),
        period_end=timezone.localdate().replace(month=12, day=31),
    )
    quiet = PatientFactory(organization=org_a, phone="+16175550198", timezone=zone)
    update_preferences(
        quiet, actor=system_user, path="admin", reason="asked by letter", do_not_contact=True
    )
    quiet_gap = CareGapFactory(patient=quiet, state=GapState.VALIDATED)
    visit = (timezone.now() + dt.timedelta(days=3)).astimezone(dt.UTC)

    page = signed_in(agent_a)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/admin/gaps/caregap/{gap.pk}/change/")
    shot(page, "gap_page_outreach_panel")
    page.click("#log-call")
    page.select_option("#id_outcome", "reached_scheduled")
    page.fill("#id_response", "Glad to come in; mornings are best")
    page.select_option("#id_site", str(site.pk))
    page.select_option("#id_provider", str(provider.pk))
    page.fill("#id_starts_at", visit.strftime("%Y-%m-%dT10:30"))
    shot(page, "log_call_form")
    page.click("input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert page.url.endswith(f"/admin/gaps/caregap/{gap.pk}/change/")
    assert "Scheduled" in page.locator(".field-state").inner_text()
    assert "Reached and scheduled" in page.locator("#attempt-log").inner_text()
    shot(page, "gap_scheduled_after_call")

    gap.refresh_from_db()
    assert gap.state == GapState.SCHEDULED
    appointment = Appointment.objects.get(patient=patient)
    assert appointment.site == site and appointment.provider == provider
    assert appointment.starts_at.astimezone(dt.UTC).strftime("%H:%M") in ("15:30", "16:30")
    assert list(appointment.gaps.all()) == [gap]
    call = OutreachAttempt.objects.get(patient=patient)
    assert call.status == AttemptStatus.LOGGED and call.actor == agent_a

    page.goto("/admin/outreach/appointment/?day=week")
    assert f"#{appointment.pk}" in page.locator("#result_list").inner_text()
    shot(page, "appointments_by_day_and_site")

    page.goto(f"/admin/gaps/caregap/{quiet_gap.pk}/change/")
    page.click('a[data-transition="record_outreach_started"]')
    page.click("input[type=submit][value=Save]")
    warning = page.locator(".messagelist .warning").inner_text()
    assert "asked not to be contacted" in warning and "coordinator review" in warning
    shot(page, "do_not_contact_refused")
    quiet_gap.refresh_from_db()
    assert quiet_gap.state == GapState.NEEDS_REVIEW
    assert not OutreachAttempt.objects.filter(patient=quiet, status=AttemptStatus.SENT).exists()

    page.goto(f"/admin/outreach/outreachattempt/?patient__id__exact={patient.pk}")
    shot(page, "attempt_log")
    page.goto("/admin/outreach/messagetemplate/")
    shot(page, "templates")
    page.goto(f"/admin/outreach/appointment/{appointment.pk}/change/")
    assert page.locator('a[data-action="complete"]').count() == 1
    shot(page, "appointment_page")
    page.goto(f"/admin/patients/patient/{patient.pk}/change/")
    assert "Reached and scheduled" in page.locator("#outreach-panel").inner_text()
    page.locator("#outreach-panel").scroll_into_view_if_needed()
    shot(page, "patient_page_outreach_panel")
    page.goto("/admin/outreach/followup/")
    shot(page, "follow_ups")


def test_supervisor_sees_a_template_preview_and_a_clinical_word_is_refused(
    signed_in, supervisor_a, org_a, system_user
):
    from outreach.models import MessageTemplate
    from outreach.services.templates import save_template

    template = save_template(
        org_a,
        actor=system_user,
        name="Screening reminder (text)",
        purpose="gap_outreach",
        channel="sms",
        body="Hello {{ patient_first_name }}, you are due for a health screening. "
        "Call {{ practice_name }} at {{ practice_phone }}.",
    )
    page = signed_in(supervisor_a)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/admin/outreach/messagetemplate/{template.pk}/change/")
    assert (
        "Hello Maria, you are due for a health screening"
        in page.locator("#template-preview").inner_text()
    )
    shot(page, "template_page_with_preview")
    page.fill("#id_body", "Hello {{ patient_first_name }}, your mammogram results are in.")
    page.fill("#id_change_reason", "mention the test")
    page.click("input[name=_save]")
    page.wait_for_selector(".errorlist.nonfield")
    assert "'mammogram', 'results'" in page.locator(".errorlist.nonfield").inner_text()
    shot(page, "template_refused_clinical_word")
    template.refresh_from_db()
    assert "mammogram" not in template.body
    assert MessageTemplate.objects.count() == 1
