"""An auditor, in chromium, finds a patient, reads the timeline, narrows it and exports it;
the access log filters by dates and exports what it shows."""

import csv
import datetime as dt
import io
import os
from pathlib import Path

import pytest

from audit import sealing
from gaps import workflow

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
# Set CAREHUB_SCREENSHOTS=/some/dir to keep a 1366x768 picture of each screen.
SHOTS = os.environ.get("CAREHUB_SCREENSHOTS", "")


def shoot(page, name: str) -> None:
    if SHOTS:
        page.set_viewport_size({"width": 1366, "height": 768})
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def test_auditor_exports_a_patient_timeline(signed_in, auditor_a, agent_a, supervisor_a, patient_a):
    gap = workflow.open_gap(
        patient_a, measure_code="CMS130", actor=supervisor_a, reason="Seen on the chart"
    )
    gap = workflow.start_review(gap, actor=agent_a)
    workflow.validate_gap(gap, actor=agent_a, reason="No colonoscopy on file")
    agent = signed_in(agent_a)
    agent.goto(f"/admin/gaps/caregap/{gap.pk}/change/")  # a read of the patient's gap

    page = signed_in(auditor_a)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/admin/")
    page.click("text=Patient timelines")
    page.fill("#searchbar", patient_a.mrn)
    page.press("#searchbar", "Enter")
    shoot(page, "audit-patient-timelines")
    page.click("text=Open timeline")
    page.wait_for_url(f"**/admin/audit/patienttimeline/{patient_a.pk}/timeline/")
    shoot(page, "audit-patient-timeline")

    rows = page.locator("#audit-events tbody tr")
    text = page.locator("#audit-events").inner_text()
    assert "state: identified → in_review" in text
    assert "No colonoscopy on file" in text
    assert agent_a.username in text and supervisor_a.username in text
    read_rows = page.locator("#audit-events tbody tr.read")
    assert read_rows.count() >= 1
    assert "gaps.caregap" in read_rows.first.inner_text()

    page.select_option("#id_kind", "change")
    page.fill("#id_actor", agent_a.username)
    page.click("#audit-filters input[type=submit]")
    changes_by_agent = rows.count()
    assert changes_by_agent >= 2
    assert page.locator("#audit-events tbody tr.read").count() == 0

    with page.expect_download() as download_info:
        page.click("text=Export CSV")
    content = Path(download_info.value.path()).read_text()
    exported = list(csv.DictReader(io.StringIO(content)))
    assert len(exported) == changes_by_agent
    assert {row["actor"] for row in exported} == {agent_a.username}
    assert any(row["reason"] == "No colonoscopy on file" for row in exported)

    with page.expect_download() as pdf_info:
        page.click("text=Export PDF")
    assert Path(pdf_info.value.path()).read_bytes().startswith(b"%PDF-")


def test_auditor_filters_the_access_log_by_dates_and_exports_it(
    signed_in, auditor_a, agent_a, patient_a
):
    agent = signed_in(agent_a)
    agent.goto(f"/admin/patients/patient/{patient_a.pk}/change/")

    page = signed_in(auditor_a)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/admin/audit/accesslog/")
    assert page.locator("#result_list tbody tr").count() >= 1
    page.fill("input[name=at_from]", "2000-01-01")
    page.fill("input[name=at_to]", "2000-01-31")
    page.click("form.carehub-date-range input[type=submit]")
    assert page.locator("#result_list").count() == 0 or (
        page.locator("#result_list tbody tr").count() == 0
    )
    page.goto(f"/admin/audit/accesslog/?q=patient:{patient_a.pk}")
    shoot(page, "audit-access-log")
    assert agent_a.username in page.locator("#result_list").inner_text()
    with page.expect_download() as download_info:
        page.click("text=Export CSV (these filters)")
    exported = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert {row["patient_ids"] for row in exported} == {str(patient_a.pk)}

    page.goto("/admin/audit/useractivity/")
    page.click(f"tr:has-text('{agent_a.username}') >> text=Open activity")
    shoot(page, "audit-user-activity")
    assert "patients.patient" in page.locator("#audit-events").inner_text()

    sealing.seal_new_rows(settle=dt.timedelta(0))
    page.goto("/admin/audit/seal/")
    shoot(page, "audit-seals")
    assert "audit_accesslog" in page.locator("#result_list").inner_text()
