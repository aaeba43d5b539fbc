"""50 agents press get-next at once against PostgreSQL, on a queue of 100,000 items: no item is
handed out twice and none is lost (row locks with SKIP LOCKED; SQLite has neither)."""

import threading
import time

import pytest
from django.db import connection, connections

from carehub.roles import AGENT
from tests.conftest import make_persona
from worklists.models import ItemKind, WorkItem
from worklists.queues import add_team_member, ensure_default_queues
from worklists.services import close_item, get_next

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ITEMS = 100_000
AGENTS_AT_ONCE = 50
CLAIMS_EACH = 20


def insert_series(model, count: int, expressions: dict[str, str], params: list) -> None:
    """INSERT one row per g in 1..count: SQL `expressions` for some fields, defaults for the rest
    (setup data written set-based; the code under test writes its own history)."""
    columns, select, values = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name in expressions:
            select.append(expressions[field.name])
        else:
            select.append("%s")
            values.append(field.get_db_prep_save(field.get_default(), connection))
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(select)} FROM generate_series(1, {int(count)}) AS g"
    )
    # Expression parameters come first in field order; keep it simple: expressions use none.
    assert not params
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


def test_fifty_agents_claim_concurrently_without_double_claims_or_losses(
    postgres_only, org_a, system_user
):
    from patients.models import Patient

    queue = ensure_default_queues(org_a, actor=system_user)[ItemKind.OUTREACH_CALL]
    team = queue.team
    agents = []
    for n in range(AGENTS_AT_ONCE):
        agent = make_persona(f"claimer-{n}", AGENT, [org_a], system_user)
        add_team_member(team, agent, actor=system_user, reason="load test")
        agents.append(agent)

    insert_series(
        Patient,
        ITEMS,
        {
            "organization": str(org_a.pk),
            "mrn": "'LOAD' || g",
            "given_name": "'Load'",
            "family_name": "'Patient' || g",
            "birth_date": "DATE '1960-01-01'",
            "sex": "'female'",
            "created_at": "now()",
            "updated_at": "now()",
        },
        [],
    )
    first_patient = Patient.objects.filter(mrn="LOAD1").values_list("pk", flat=True).get()
    insert_series(
        WorkItem,
        ITEMS,
        {
            "organization": str(org_a.pk),
            "queue": str(queue.pk),
            "kind": f"'{ItemKind.OUTREACH_CALL}'",
            "patient": f"{first_patient - 1} + g",
            "reason": "'Reach the patient'",
            "risk_rank": "g %% 3",
            "due_date": "CURRENT_DATE + (g %% 30)",
            "measure_weight": "1 + g %% 3",
            "sla_due_at": "now() + interval '1 day'",
            "created_at": "now()",
        },
        [],
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE worklists_workitem")

    claims: dict[int, list[int]] = {agent.pk: [] for agent in agents}
    errors: list[BaseException] = []
    start = threading.Barrier(AGENTS_AT_ONCE)

    def work(agent):
        try:
            start.wait()
            for _ in range(CLAIMS_EACH):
                item = get_next(agent)
                assert item is not None
                claims[agent.pk].append(item.pk)
                close_item(item, actor=agent, resolution="Reached")
        except BaseException as error:  # reported after the join
            errors.append(error)
        finally:
            connections.close_all()

    began = time.monotonic()
    threads = [threading.Thread(target=work, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    assert not errors, errors[:3]

    handed_out = [pk for pks in claims.values() for pk in pks]
    assert len(handed_out) == AGENTS_AT_ONCE * CLAIMS_EACH
    assert len(set(handed_out)) == len(handed_out), "an item was handed out twice"
    owners = dict(WorkItem.objects.filter(owner__isnull=False).values_list("pk", "owner_id"))
    assert owners == {pk: agent for agent, pks in claims.items() for pk in pks}, "claims lost"
    assert WorkItem.objects.filter(state="open", owner__isnull=True).count() == ITEMS - len(
        handed_out
    )
    claimed_rows = WorkItem.history.filter(history_change_reason="Claimed (get next)")
    assert claimed_rows.count() == len(handed_out)
    # The highest-priority items went first: every claimed item is high risk (rank 0), since
    # a third of 100,000 is far more than were claimed.
    assert set(WorkItem.objects.filter(pk__in=handed_out).values_list("risk_rank", flat=True)) == {
        0
    }
    print(f"\n{len(handed_out)} claims by {AGENTS_AT_ONCE} concurrent agents in {elapsed:.1f} s")
