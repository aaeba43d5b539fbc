"""Consent and preferences as agents, patients and auditors use them, in chromium.

An agent records an SMS opt-out the patient asked for by phone and sees texts become blocked
with the reason. A patient opens a self-service link (no login), opts out of e-mail, and the
auditor finds that change attributed to the patient.
"""

import datetime as dt

import pytest

from consent.services import grant_consent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

OPTED_OUT_OF_TEXTS = "The patient opted out of text messages."


def sms_cell(page) -> str:
    return page.locator('#contact-status tr[data-channel="sms"] td.decision-general').inner_text()


def test_agent_records_a_phone_opt_out_and_sees_sms_blocked(signed_in, agent_a, patient_a):
    grant_consent(
        patient_a,
        kind="sms_tcpa",
        method="written_form",
        actor=agent_a,
        evidence="intake form",
        at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
    )
    page = signed_in(agent_a)
    page.goto(f"/admin/patients/patient/{patient_a.pk}/change/")
    assert OPTED_OUT_OF_TEXTS not in sms_cell(page)

    page.click("text=Record a preference change")
    page.check("#id_opted_out_channels input[value=sms]")
    page.fill("#id_reason", "Patient called and asked us to stop texting")
    page.click("input[type=submit][value='Save preferences']")
    page.wait_for_url(f"**/admin/patients/patient/{patient_a.pk}/change/")

    assert "Contact preferences saved." in page.locator(".messagelist").inner_text()
    cell = sms_cell(page)
    assert "blocked" in cell
    assert OPTED_OUT_OF_TEXTS in cell
    general = '#contact-status tr[data-channel="sms"] td.decision-general'
    assert page.locator(f'{general} [data-reason="sms_opted_out"]').count() == 1


def test_patient_opts_out_of_email_and_the_auditor_sees_it_as_the_patients_change(
    signed_in, new_page, agent_a, auditor_a, patient_a
):
    agent = signed_in(agent_a)
    agent.goto(f"/admin/patients/patient/{patient_a.pk}/change/")
    agent.click("text=Self-service link")
    agent.click("input[type=submit][value='Create link']")
    link = agent.locator("#self-service-url").input_value()
    assert "/preferences/" in link

    patient = new_page()  # a fresh browser: no session, no login
    patient.goto(link)
    assert patient_a.family_name not in patient.content()
    patient.check("#id_opted_out_channels input[value=email]")
    patient.click("button[type=submit]")
    assert "Your choices are saved" in patient.locator("p.ok").inner_text()
    assert patient.locator("#id_opted_out_channels input[value=email]").is_checked()

    auditor = signed_in(auditor_a)
    auditor.goto(f"/admin/patients/patient/{patient_a.pk}/change/")
    auditor.click("text=Consent history")
    newest = auditor.locator("#contact-history tbody tr").first
    assert newest.locator("td.who").inner_text() == "Patient (self-service link)"
    assert "opted_out_channels: [] → ['email']" in newest.inner_text()
