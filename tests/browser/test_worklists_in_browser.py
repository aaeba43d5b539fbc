"""An agent's day in chromium: My work, get next, review, log a call, book, confirm completion,
close with evidence (and the blood pressure); a supervisor reassigns an item from the queues;
the other organization's agent never sees any of it. Screenshots of the home and case page at
1366x768 go to $CAREHUB_SCREENSHOT_DIR (or the test's tmp dir)."""

import os
from pathlib import Path

import pytest
from django.utils import timezone

from gaps.care_gaps import CareGap, GapState
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from tests.patients.factories import PatientFactory, SiteFactory
from tests.worklists.conftest import join
from worklists.models import ItemKind, PatientRisk, RiskTier, WorkItem
from worklists.queues import AGENTS
from worklists.services import reconcile_gap_items

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    # A Tuesday, 11:00 in New York: inside the calling hours an agent's call must keep.
    pytest.mark.time_machine(IN_MEASUREMENT_YEAR, tick=True),
]
VIEWPORT = {"width": 1366, "height": 768}


def shot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CAREHUB_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def act(page, gap_pk: int, service: str, fill: dict | None = None):
    """Press a case-page action: a one-click button, or open its form, fill it and submit."""
    button = page.locator(f'#gap-{gap_pk} input[data-action="{service}"]')
    if button.count():
        button.click()
    else:
        details = page.locator(f'#gap-{gap_pk} details[data-action="{service}"]')
        details.locator("summary").click()
        for field, value in (fill or {}).items():
            selector = f"#id_g{gap_pk}-{field}"
            if details.locator(f"select{selector}").count():
                details.locator(selector).select_option(value)
            else:
                details.locator(selector).fill(value)
        details.locator("input[type=submit]").click()
    page.wait_for_selector(".messagelist .success")


def test_an_agents_day_and_a_supervisors_reassignment(
    signed_in, agent_a, agent_b, supervisor_a, org_a, org_b, system_user, tmp_path
):
    join(agent_a, org_a, AGENTS, system_user)
    join(agent_b, org_b, AGENTS, system_user)
    site = SiteFactory(organization=org_a)
    rosa = PatientFactory(
        organization=org_a, attributed_site=site, family_name="Alvarez", given_name="Rosa"
    )
    other = PatientFactory(organization=org_a, attributed_site=site, family_name="Brown")
    bp_gap = CareGapFactory(patient=rosa, measure_code="CMS165", measure_weight=3)
    later_gap = CareGapFactory(patient=other, measure_code="AWV", measure_weight=1)
    PatientRisk.objects.create(
        patient=rosa,
        organization=org_a,
        tier=RiskTier.HIGH,
        score=9,
        chronic_conditions=3,
        acute_visits=1,
        computed_at=timezone.now(),
    )
    reconcile_gap_items([bp_gap.pk, later_gap.pk], actor=system_user)
    today = timezone.localdate().isoformat()

    page = signed_in(agent_a)
    page.set_viewport_size(VIEWPORT)
    assert page.locator("#my-work-summary .count-claimed").inner_text() == "0"
    shot(page, "worklists-home-agent", tmp_path)

    page.click("#get-next")
    page.wait_for_selector("#patient-header")
    assert "Alvarez, Rosa" in page.locator("#patient-header").inner_text(), "high risk first"
    assert "yes" in page.locator('#case-contact tr[data-channel="phone"]').inner_text()
    shot(page, "worklists-case-page", tmp_path)

    act(page, bp_gap.pk, "start_review")
    act(page, bp_gap.pk, "validate_gap")
    act(page, bp_gap.pk, "record_outreach_started", {"channel": "phone"})
    act(page, bp_gap.pk, "mark_scheduled", {"appointment_on": today})
    act(page, bp_gap.pk, "mark_completed")
    page.locator(f'#gap-{bp_gap.pk} details[data-action="close_gap"] summary').click()
    shot(page, "worklists-case-closing", tmp_path)
    page.locator(f'#gap-{bp_gap.pk} details[data-action="close_gap"] summary').click()
    act(
        page,
        bp_gap.pk,
        "close_gap",
        {
            "service_date": today,
            "evidence_kind": "visit_note",
            "reference": "NOTE-2026-77",
            "systolic_bp": "128",
            "diastolic_bp": "82",
        },
    )
    assert "No open care gaps." in page.locator("#case-gaps").inner_text()
    bp_gap.refresh_from_db()
    assert bp_gap.state == GapState.CLOSED
    assert bp_gap.evidence.get().systolic_bp == 128
    kinds = list(
        WorkItem.objects.filter(gap=bp_gap).order_by("pk").values_list("kind", "state", "owner")
    )
    assert kinds == [
        (ItemKind.REVIEW_GAP, "done", agent_a.pk),
        (ItemKind.OUTREACH_CALL, "done", agent_a.pk),
        (ItemKind.CONFIRM_COMPLETION, "done", agent_a.pk),
        (ItemKind.CONFIRM_CLOSURE, "done", agent_a.pk),
    ]

    # The supervisor hands the other patient's review to the agent from the queues.
    boss = signed_in(supervisor_a)
    boss.set_viewport_size(VIEWPORT)
    boss.goto("/admin/worklists/workitem/queues/")
    assert "Records review" in boss.locator("#queues").inner_text()
    shot(boss, "worklists-queues-supervisor", tmp_path)
    waiting = WorkItem.objects.get(gap=later_gap, state="open")
    boss.goto("/admin/worklists/workitem/?state=all")
    shot(boss, "worklists-item-list-supervisor", tmp_path)
    boss.goto("/admin/gaps/caregap/?work=all")
    shot(boss, "gaps-list-supervisor", tmp_path)
    boss.goto("/admin/worklists/workitem/?owner=unassigned")
    boss.check(f'input[name="_selected_action"][value="{waiting.pk}"]')
    boss.select_option("select[name=action]", "assign_selected")
    boss.click("button[name=index]")
    boss.select_option("#id_owner", str(agent_a.pk))
    boss.fill("#id_reason", "Rosa's agent knows the family")
    boss.click("input[type=submit][value=Assign]")
    boss.wait_for_selector(".messagelist .success")
    waiting.refresh_from_db()
    assert (waiting.owner, waiting.assignment) == (agent_a, "assigned")

    page.goto("/admin/worklists/workitem/my-work/")
    assert "Brown" in page.locator("#my-items").inner_text()
    shot(page, "worklists-my-work", tmp_path)

    outsider = signed_in(agent_b)
    assert outsider.locator("#my-work-summary .count-claimed").inner_text() == "0"
    assert outsider.goto(f"/admin/worklists/workitem/case/{rosa.pk}/").status == 404
    outsider.goto("/admin/worklists/workitem/?state=all")
    assert "Alvarez" not in outsider.locator("#content").inner_text()
    outsider.goto("/admin/")
    outsider.click("#get-next")
    assert "Nothing is waiting" in outsider.locator(".messagelist").inner_text()
    assert WorkItem.objects.filter(owner=agent_b).count() == 0
    assert CareGap.objects.get(pk=later_gap.pk).state == GapState.IDENTIFIED
