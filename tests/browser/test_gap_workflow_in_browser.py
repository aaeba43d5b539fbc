"""An agent works a care gap from review to a closure with a lab-result file, in chromium; the
supervisor reads the transitions; another organization's agent cannot open the gap."""

import pytest
from django.utils import timezone

from gaps.care_gaps import CareGap, GapEvidence, GapState
from tests.gaps.evidence_samples import pdf_bytes
from tests.gaps.factories import CareGapFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def transition(page, service: str, fill: dict | None = None, files: dict | None = None):
    page.click(f'a[data-transition="{service}"]')
    for selector, value in (fill or {}).items():
        if selector.startswith("select"):
            page.select_option(selector.split(" ", 1)[1], value)
        else:
            page.fill(selector, value)
    for selector, payload in (files or {}).items():
        page.set_input_files(selector, files=[payload])
    page.click("input[type=submit][value=Save]")
    page.wait_for_selector(".messagelist .success")


def test_agent_closes_a_gap_with_a_lab_result_and_the_supervisor_sees_the_history(
    signed_in, agent_a, agent_b, supervisor_a, patient_a, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    gap = CareGapFactory(patient=patient_a)
    today = timezone.localdate()
    page = signed_in(agent_a)
    page.goto("/admin/gaps/caregap/")
    page.click(f"text=#{gap.pk}")

    transition(page, "start_review")
    transition(page, "validate_gap", {"#id_reason": "No colonoscopy on file anywhere"})
    transition(page, "record_outreach_started")
    transition(page, "mark_scheduled", {"#id_appointment_on": today.isoformat()})
    transition(page, "mark_completed", {"#id_completed_on": today.isoformat()})
    transition(
        page,
        "close_gap",
        {
            "#id_service_date": today.isoformat(),
            "select #id_evidence_kind": "lab_result",
            "#id_reference": "ACC-2026-118",
        },
        {
            "#id_attachment": {
                "name": "fit-result.pdf",
                "mimeType": "application/pdf",
                "buffer": pdf_bytes("FIT negative"),
            }
        },
    )

    assert "Closed" in page.locator(".field-state").inner_text()
    assert "Lab result" in page.locator("#gap-evidence").inner_text()
    gap.refresh_from_db()
    assert gap.state == GapState.CLOSED
    evidence = GapEvidence.objects.get(gap=gap)
    assert (evidence.kind, evidence.reference, evidence.attachment_type) == (
        "lab_result",
        "ACC-2026-118",
        "application/pdf",
    )

    supervisor = signed_in(supervisor_a)
    supervisor.goto(f"/admin/gaps/caregap/{gap.pk}/change/")
    states = supervisor.locator("#gap-history td.state").all_inner_texts()
    assert states == [
        "closed",
        "completed",
        "scheduled",
        "outreach",
        "validated",
        "in_review",
        "identified",
    ]
    people = set(supervisor.locator("#gap-history td.who").all_inner_texts()[:6])
    assert people == {agent_a.username}
    assert "No colonoscopy on file anywhere" in supervisor.locator("#gap-history").inner_text()
    download = supervisor.request.get(supervisor.locator("#gap-evidence a").get_attribute("href"))
    assert download.status == 200 and download.body().startswith(b"%PDF")

    outsider = signed_in(agent_b)
    response = outsider.goto(f"/admin/gaps/caregap/{gap.pk}/change/")
    assert response.status == 404
    assert (
        outsider.request.get(supervisor.locator("#gap-evidence a").get_attribute("href")).status
        == 404
    )
    assert CareGap.objects.get().state == GapState.CLOSED
