"""Organization scoping and the PHI access log, as a signed-in user sees them in chromium.

An agent of organization A finds A's patients and nothing of B's: not by list, search,
autocomplete or a typed URL. An auditor of A then finds the agent's reads in A's access log.
"""

import pytest

from tests.patients.factories import PatientFactory, SiteFactory

pytestmark = [
    pytest.mark.browser,
    # Each test runs against the live server, so it commits; the migrations' rows (roles, the
    # system user) are restored before each test instead of being lost with the flush.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

CHANGELIST = "/admin/patients/patient/"
SITE_AUTOCOMPLETE = (
    "/admin/autocomplete/?app_label=patients&model_name=patient&field_name=attributed_site"
)


def shown_mrns(page) -> list[str]:
    return page.locator("#result_list .field-mrn").all_inner_texts()


def search(page, term: str) -> list[str]:
    page.goto(CHANGELIST)
    page.fill("#searchbar", term)
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/patients/patient/?q=*")
    return shown_mrns(page)


def autocomplete_site_ids(page, term: str) -> set[int]:
    response = page.request.get(f"{SITE_AUTOCOMPLETE}&term={term}")
    assert response.status == 200, response.text()
    return {int(result["id"]) for result in response.json()["results"]}


def table_rows(page, selector: str) -> list[list[str]]:
    rows = page.locator(f"{selector} tbody tr")
    return [
        [cell.strip() for cell in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_agent_of_org_a_sees_org_a_patients_and_nothing_of_org_b(
    signed_in, agent_a, org_a, org_b, patient_a, patient_b
):
    other_a = PatientFactory(organization=org_a, attributed_site=patient_a.attributed_site)
    other_b = PatientFactory(organization=org_b, attributed_site=patient_b.attributed_site)
    second_site_a = SiteFactory(organization=org_a, name="Riverside Annex")
    second_site_b = SiteFactory(organization=org_b, name="Lakeshore Annex")
    page = signed_in(agent_a)

    response = page.goto(CHANGELIST)
    assert response.status == 200
    assert sorted(shown_mrns(page)) == sorted([patient_a.mrn, other_a.mrn])
    listed = page.locator("#changelist").inner_text()
    for leaked in (patient_b.mrn, other_b.mrn, patient_b.display_name, org_b.name):
        assert leaked not in listed

    # The search works (A's MRN and name prefix find A's patient) and never reaches B's.
    assert search(page, patient_a.mrn) == [patient_a.mrn]
    assert search(page, "Alva") == [patient_a.mrn]
    assert search(page, patient_b.mrn) == []
    assert search(page, "Alvara") == []  # Alvarado is B's patient, Alvarez is A's

    site_ids_a = {patient_a.attributed_site_id, second_site_a.pk}
    assert autocomplete_site_ids(page, "") == site_ids_a
    assert autocomplete_site_ids(page, "Riverside") == {second_site_a.pk}
    assert autocomplete_site_ids(page, "Lakeshore") == set()
    assert second_site_b.pk not in autocomplete_site_ids(page, "Site")

    for view in ("change", "history"):
        own = page.goto(f"{CHANGELIST}{patient_a.pk}/{view}/")
        assert own.status == 200, view
        other = page.goto(f"{CHANGELIST}{patient_b.pk}/{view}/")
        assert other.status == 404, view
        assert patient_b.mrn not in page.content()


def test_auditor_of_org_a_sees_the_history_and_the_agents_earlier_visit(
    signed_in, agent_a, agent_b, auditor_a, patient_a, patient_b
):
    agent = signed_in(agent_a)
    assert agent.goto(f"{CHANGELIST}{patient_a.pk}/change/").status == 200
    agent.fill("#id_city", "Springfield")
    agent.fill("#id_change_reason", "Address confirmed by phone")
    agent.click("input[name=_save]")
    agent.wait_for_url(f"**{CHANGELIST}")
    assert "was changed successfully" in agent.locator(".messagelist").inner_text()
    # Another client's agent reads B's patient: that read belongs to B's log, not A's.
    assert signed_in(agent_b).goto(f"{CHANGELIST}{patient_b.pk}/change/").status == 200

    auditor = signed_in(auditor_a)
    assert auditor.goto(f"{CHANGELIST}{patient_a.pk}/history/").status == 200
    history = table_rows(auditor, "#change-history")
    # Columns: object, date/time, comment, changed by, change reason, changes. Newest first;
    # the factory created the patient without a user.
    assert [(row[0], row[2], row[3]) for row in history] == [
        (str(patient_a), "Changed", agent_a.username),
        (str(patient_a), "Created", "None"),
    ]
    assert history[0][4] == "Address confirmed by phone"
    assert "Springfield" in history[0][5]

    assert auditor.goto("/admin/audit/accesslog/").status == 200
    rows = auditor.locator("#result_list tbody tr")
    log = [
        {
            column: rows.nth(i).locator(f".field-{column}").inner_text().strip()
            for column in ("user", "action", "shown_ids")
        }
        for i in range(rows.count())
    ]
    seen = {(entry["user"], entry["action"], entry["shown_ids"]) for entry in log}
    assert (agent_a.username, "Opened a record", str(patient_a.pk)) in seen
    assert (auditor_a.username, "Opened a record's history", str(patient_a.pk)) in seen
    assert all(entry["user"] != agent_b.username for entry in log)
    assert str(patient_b.pk) not in {entry["shown_ids"] for entry in log}
