"""The agent's and supervisor's screens: scoped, fixed query counts, thin over the services."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from gaps.care_gaps import GapState
from tests.gaps.factories import IN_MEASUREMENT_YEAR, CareGapFactory
from tests.worklists.factories import WorkItemFactory
from worklists.models import ItemKind, RiskTier, WorkItem
from worklists.services import assign_items, reconcile_gap_items

pytestmark = [pytest.mark.django_db, pytest.mark.time_machine(IN_MEASUREMENT_YEAR)]

MY_WORK = reverse("admin:worklists_my_work")
QUEUES = reverse("admin:worklists_supervise")
ITEMS = reverse("admin:worklists_workitem_changelist")


def owned_items(count, organization, owner, supervisor):
    items = [WorkItemFactory(organization=organization) for _ in range(count)]
    assign_items([i.pk for i in items], to=owner, actor=supervisor, reason="test")
    return items


@pytest.mark.parametrize("rows", [1, 50])
def test_my_work_lists_the_agents_items_in_a_fixed_number_of_queries(
    client, org_a, working_agent, supervisor_a, rows, django_assert_max_num_queries
):
    items = owned_items(rows, org_a, working_agent, supervisor_a)
    client.force_login(working_agent)
    with django_assert_max_num_queries(16):
        response = client.get(MY_WORK)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<strong class="count-claimed">{rows}</strong>' in body
    assert items[0].patient.display_name in body


@pytest.mark.parametrize("rows", [1, 50])
def test_the_work_item_list_runs_a_fixed_number_of_queries(
    client, org_a, working_agent, supervisor_a, rows, django_assert_max_num_queries
):
    owned_items(rows, org_a, working_agent, supervisor_a)
    client.force_login(supervisor_a)
    with django_assert_max_num_queries(18):
        response = client.get(ITEMS)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_the_admin_index_opens_on_my_work_with_the_get_next_button(client, working_agent):
    client.force_login(working_agent)
    body = client.get(reverse("admin:index")).content.decode()
    assert 'id="my-work-summary"' in body and 'id="get-next"' in body


def test_get_next_opens_the_case_of_the_claimed_patient(client, org_a, working_agent):
    item = WorkItemFactory(organization=org_a, tier=RiskTier.HIGH)
    client.force_login(working_agent)
    response = client.post(reverse("admin:worklists_get_next"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:worklists_case", args=[item.patient_id])
    assert WorkItem.objects.get(pk=item.pk).owner == working_agent


def test_the_case_page_shows_gaps_contact_decisions_and_risk_and_acts_through_the_service(
    client, patient_a, working_agent, django_assert_max_num_queries
):
    gap = CareGapFactory(patient=patient_a, state=GapState.IN_REVIEW)
    reconcile_gap_items([gap.pk], actor=working_agent)
    client.force_login(working_agent)
    url = reverse("admin:worklists_case", args=[patient_a.pk])
    with django_assert_max_num_queries(40):
        body = client.get(url).content.decode()
    assert f'id="gap-{gap.pk}"' in body
    assert 'data-channel="sms"' in body and 'data-channel="phone"' in body
    assert 'data-action="validate_gap"' in body
    assert reverse("admin:outreach_log_call", args=[patient_a.pk]) in body  # agents log calls

    action = reverse("admin:worklists_case_action", args=[patient_a.pk, gap.pk, "validate_gap"])
    response = client.post(action, {f"g{gap.pk}-reason": "Nothing on file elsewhere"})
    assert response.status_code == 302
    gap.refresh_from_db()
    assert gap.state == GapState.VALIDATED
    assert WorkItem.objects.get(gap=gap, state="open").kind == ItemKind.OUTREACH_CALL


def test_closing_from_the_case_page_takes_the_blood_pressure(client, patient_a, working_agent):
    gap = CareGapFactory(patient=patient_a, measure_code="CMS165", state=GapState.COMPLETED)
    client.force_login(working_agent)
    action = reverse("admin:worklists_case_action", args=[patient_a.pk, gap.pk, "close_gap"])
    today = timezone.localdate().isoformat()
    fields = {
        f"g{gap.pk}-service_date": today,
        f"g{gap.pk}-evidence_kind": "visit_note",
        f"g{gap.pk}-reference": "NOTE-7",
    }
    page = client.post(action, {**fields, f"g{gap.pk}-systolic_bp": "151"}, follow=True)
    assert "systolic and diastolic" in page.content.decode()
    client.post(
        action, {**fields, f"g{gap.pk}-systolic_bp": "132", f"g{gap.pk}-diastolic_bp": "84"}
    )
    gap.refresh_from_db()
    assert gap.state == GapState.CLOSED
    assert gap.evidence.get().systolic_bp == 132


def test_another_organizations_agent_sees_no_case_and_no_item(
    client, patient_a, org_a, working_agent_b
):
    item = WorkItemFactory(organization=org_a, patient=patient_a)
    gap = CareGapFactory(patient=patient_a, state=GapState.IN_REVIEW)
    client.force_login(working_agent_b)
    assert client.get(reverse("admin:worklists_case", args=[patient_a.pk])).status_code == 404
    action = reverse("admin:worklists_case_action", args=[patient_a.pk, gap.pk, "validate_gap"])
    assert client.post(action).status_code == 404
    assert client.get(reverse("admin:worklists_workitem_change", args=[item.pk])).status_code == 404
    assert item.pk not in [i.pk for i in client.get(ITEMS).context["cl"].result_list]
    assert client.post(reverse("admin:worklists_get_next")).status_code == 302
    assert WorkItem.objects.get(pk=item.pk).owner is None
    gap.refresh_from_db()
    assert gap.state == GapState.IN_REVIEW


def test_supervisors_see_aging_buckets_and_breaches_agents_do_not(
    client, org_a, org_b, supervisor_a, working_agent
):
    now = timezone.now()
    later = now + dt.timedelta(days=1)
    WorkItemFactory(organization=org_a, created_at=now - dt.timedelta(days=1), sla_due_at=later)
    WorkItemFactory(organization=org_a, created_at=now - dt.timedelta(days=10), sla_due_at=later)
    WorkItemFactory(
        organization=org_a,
        created_at=now - dt.timedelta(days=40),
        sla_due_at=now - dt.timedelta(days=30),
    )
    WorkItemFactory(organization=org_b, created_at=now - dt.timedelta(days=40))
    client.force_login(supervisor_a)
    response = client.get(QUEUES)
    queues = {q.name: q for q in response.context["queues"]}
    assert {q.organization_id for q in response.context["queues"]} == {org_a.pk}
    outreach = queues["Outreach and scheduling"]
    assert [count for _, count in outreach.buckets] == [1, 0, 1, 0, 1]
    assert outreach.breached_count == 1
    client.force_login(working_agent)
    assert client.get(QUEUES).status_code == 403


def test_a_supervisor_bulk_assigns_and_an_agent_may_not(client, org_a, supervisor_a, working_agent):
    items = [WorkItemFactory(organization=org_a) for _ in range(3)]
    ids = ",".join(str(i.pk) for i in items)
    assign = reverse("admin:worklists_assign")
    client.force_login(working_agent)
    assert (
        client.post(assign, {"ids": ids, "owner": working_agent.pk, "reason": "x"}).status_code
        == 403
    )
    client.force_login(supervisor_a)
    response = client.post(
        assign, {"ids": ids, "owner": working_agent.pk, "reason": "Covers Spanish speakers"}
    )
    assert response.status_code == 302
    assert set(
        WorkItem.objects.filter(pk__in=[i.pk for i in items]).values_list("owner", flat=True)
    ) == {working_agent.pk}
    history = WorkItem.history.filter(id=items[0].pk).order_by("-history_id").first()
    assert (history.history_user, history.history_change_reason) == (
        supervisor_a,
        "Covers Spanish speakers",
    )


def test_queues_and_teams_lists_are_scoped_to_the_users_organizations(
    client, org_a, org_b, supervisor_a, system_user
):
    from worklists.queues import ensure_default_queues

    ensure_default_queues(org_a, actor=system_user)
    ensure_default_queues(org_b, actor=system_user)
    client.force_login(supervisor_a)
    queues = client.get(reverse("admin:worklists_queue_changelist")).context["cl"].result_list
    teams = client.get(reverse("admin:worklists_team_changelist")).context["cl"].result_list
    assert {q.organization_id for q in queues} == {org_a.pk}
    assert {t.organization_id for t in teams} == {org_a.pk}


def test_the_patient_page_explains_the_risk_tier(client, org_a, supervisor_a, system_user):
    from worklists.risk import recompute_risk_tiers

    item = WorkItemFactory(organization=org_a)
    recompute_risk_tiers(org_a, actor=system_user)
    client.force_login(supervisor_a)
    body = client.get(
        reverse("admin:patients_patient_change", args=[item.patient_id])
    ).content.decode()
    assert 'id="patient-risk"' in body
    assert "no visit on record (+2)" in body
    assert "1 open work item(s)" in body


def test_a_supervisor_adds_an_agent_to_a_team_and_the_agent_may_then_take_its_work(
    client, org_a, supervisor_a, agent_a, agent_b, working_agent_b, system_user
):
    from worklists.models import Team
    from worklists.queues import AGENTS, ensure_default_queues, workable_queue_ids

    ensure_default_queues(org_a, actor=system_user)
    team = Team.objects.get(organization=org_a, name=AGENTS)
    url = reverse("admin:worklists_team_members", args=[team.pk])
    client.force_login(supervisor_a)
    assert client.post(url, {"change": "add", "user": agent_b.pk, "reason": "x"}).status_code == 200
    assert workable_queue_ids(agent_b) and team not in agent_b.teams.all()
    response = client.post(url, {"change": "add", "user": agent_a.pk, "reason": "New hire"})
    assert response.status_code == 302
    assert len(workable_queue_ids(agent_a)) == 3
    assert team.history.order_by("-history_id").first().history_change_reason == "New hire"
    client.force_login(agent_a)
    assert client.get(url).status_code == 403


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_case_action_outside_a_test_transaction_commits_the_step_and_its_work(
    client, patient_a, working_agent
):
    # Requests run in autocommit like the live server: every row lock must sit in a transaction.
    gap = CareGapFactory(patient=patient_a, state=GapState.IDENTIFIED)
    client.force_login(working_agent)
    action = reverse("admin:worklists_case_action", args=[patient_a.pk, gap.pk, "start_review"])
    assert client.post(action).status_code == 302
    gap.refresh_from_db()
    assert gap.state == GapState.IN_REVIEW
    assert WorkItem.objects.get(gap=gap).kind == ItemKind.REVIEW_GAP
