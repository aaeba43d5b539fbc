"""Get-next under load: 50 agents claiming at once from a queue of 1,000,000 open items.

    DEBUG=true .venv/bin/python -m bench worklists_get_next    # BENCH_ITEMS=1000000 default

Uses a scratch PostgreSQL database `carehub_bench_worklists`, fills it once in SQL (one patient
and one open outreach item each, spread over tiers, due dates and measure weights), then runs
one agent alone, then BENCH_AGENTS (50) threads at once, each claiming BENCH_CLAIMS (20) items:

- `services.get_next`: the service the button calls (own work first, the queues the agent may
  work through django-guardian, the claim under SELECT … FOR UPDATE SKIP LOCKED, the patient's
  other items, history rows);
- the raw SQL of the same claim: one UPDATE of the row a SKIP LOCKED sub-select picks.

Each claimed item is then closed (untimed) so the next claim is a fresh one. Prints p50, p95 and
max per claim, claims per second, and the plan of the claim's sub-select.

The 50 agents are threads of one Python process, so the service's Python time (ORM, history
rows) is serialized by the GIL: its concurrent p50 is roughly 50 times its single-agent CPU
time, where real agents are spread over several web workers. The raw claim shows what the
database itself costs under the same contention.
"""

import os
import statistics
import threading
import time

from bench._scratch import use_scratch_database

ITEMS = int(os.environ.get("BENCH_ITEMS", "1000000"))
AGENTS = int(os.environ.get("BENCH_AGENTS", "50"))
CLAIMS = int(os.environ.get("BENCH_CLAIMS", "20"))

RAW_CLAIM = """
    UPDATE worklists_workitem SET owner_id = %s, assignment = 'claimed', claimed_at = now(),
        last_activity_at = now()
    WHERE id = (
        SELECT id FROM worklists_workitem
        WHERE state = 'open' AND owner_id IS NULL AND queue_id = ANY(%s)
          AND (not_before IS NULL OR not_before <= CURRENT_DATE)
        ORDER BY risk_rank, due_date, measure_weight DESC, id
        LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id
"""


def fill_items(queue_by_org: dict[int, int], count: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM worklists_workitem")
        if cursor.fetchone()[0] >= count:
            return
        print(f"filling {count:,} work items ...", flush=True)
        cases = " ".join(f"WHEN {org} THEN {queue}" for org, queue in queue_by_org.items())
        cursor.execute(
            f"""
            INSERT INTO worklists_workitem (organization_id, queue_id, kind, patient_id, state,
                reason, resolution, assignment, risk_rank, due_date, measure_weight,
                sla_due_at, created_at)
            SELECT p.organization_id, CASE p.organization_id {cases} END, 'outreach_call', p.id,
                'open', 'Reach the patient to book the service', '', '', p.id %% 3,
                CURRENT_DATE + ((p.id * 7) %% 60)::int - 20, 1 + p.id %% 3,
                now() + interval '3 days', now() - ((p.id %% 40) || ' days')::interval
            FROM patients_patient p ORDER BY p.id LIMIT %s
            """,
            [count],
        )
        cursor.execute("VACUUM ANALYZE worklists_workitem")


def reset_claims() -> None:
    """Put every item back in the queue (bench data has no history worth keeping)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE worklists_workitem SET state = 'open', owner_id = NULL, assignment = '', "
            "claimed_at = NULL, last_activity_at = NULL, closed_at = NULL, closed_by_id = NULL "
            "WHERE owner_id IS NOT NULL OR state <> 'open'"
        )
        cursor.execute("VACUUM ANALYZE worklists_workitem")


def run(label: str, agents, claim, close) -> None:
    from django.db import connections

    samples: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(agents))

    def work(agent):
        try:
            start.wait()
            mine = []
            for _ in range(CLAIMS):
                began = time.perf_counter()
                claimed = claim(agent)
                took = (time.perf_counter() - began) * 1000
                assert claimed is not None
                mine.append(took)
                close(agent, claimed)  # untimed: the next claim must find a fresh item
            with lock:
                samples.extend(mine)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    began = time.perf_counter()
    threads = [threading.Thread(target=work, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors:
        raise errors[0]
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(
        f"{label:<34} p50 {statistics.median(samples):7.1f} ms   p95 {p95:7.1f} ms   "
        f"max {samples[-1]:7.1f} ms   {len(samples) / wall:6.0f} claims/s "
        f"({len(samples)} claims by {len(agents)} agents)",
        flush=True,
    )


def main() -> None:
    use_scratch_database(os.environ.get("BENCH_WORKLISTS_DB", "carehub_bench_worklists"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", verbosity=0)

    from bench.patients_admin import fill as fill_patients
    from carehub import roles
    from carehub.history import get_system_user
    from carehub.models import User
    from carehub.services import assign_role, grant_organization
    from patients.models import Organization
    from patients.services import create_organization
    from worklists.models import ItemKind, WorkItem
    from worklists.queues import add_team_member, ensure_default_queues
    from worklists.services import close_item, get_next

    system = get_system_user()
    organizations = [
        Organization.objects.filter(slug=slug).first()
        or create_organization(slug=slug, name=slug, kind="practice", actor=system, reason="bench")
        for slug in ("bench-a", "bench-b")
    ]
    fill_patients(organizations, ITEMS)
    queues = {
        org.pk: ensure_default_queues(org, actor=system)[ItemKind.OUTREACH_CALL]
        for org in organizations
    }
    fill_items({org: queue.pk for org, queue in queues.items()}, ITEMS)
    agents = []
    for n in range(AGENTS):
        agent = User.objects.filter(username=f"bench-claimer-{n}").first()
        if agent is None:
            agent = User.objects.create_user(f"bench-claimer-{n}", is_staff=True)
            assign_role(agent, roles.AGENT, actor=system, reason="bench")
            grant_organization(agent, organizations[0], actor=system, reason="bench")
            add_team_member(queues[organizations[0].pk].team, agent, actor=system, reason="bench")
        agents.append(agent)
    queue_ids = [queues[organizations[0].pk].pk]
    print(f"{WorkItem.objects.count():,} open items; {AGENTS} agents of one organization")

    def raw_claim(agent):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(RAW_CLAIM, [agent.pk, queue_ids])
            return cursor.fetchone()

    def close_raw(agent, row) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE worklists_workitem SET state = 'done', closed_at = now() WHERE id = %s",
                [row[0]],
            )

    def close_service(agent, item) -> None:
        close_item(item, actor=agent, resolution="bench")

    reset_claims()
    run("get_next (service), one agent", agents[:1], get_next, close_service)
    reset_claims()
    run("raw SQL claim, one agent", agents[:1], raw_claim, close_raw)
    reset_claims()
    run("get_next (service)", agents, get_next, close_service)
    reset_claims()
    run("raw SQL claim (same query)", agents, raw_claim, close_raw)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + RAW_CLAIM, [agents[0].pk, queue_ids])
        print("\nplan of the raw claim (one more claim, single-threaded):")
        for (line,) in cursor.fetchall():
            print("  " + line)
    reset_claims()
