"""The care-gap worklist at a million gaps: changelist, filters, MRN search, the gap page.

    DEBUG=true .venv/bin/python -m bench gaps_admin     # BENCH_GAPS=1000000 default

Uses a scratch PostgreSQL database `carehub_bench_gaps_admin`, fills it once in SQL (patients,
five measures' gaps each, spread over every state, plus payer-list sources for a fifth of them),
then times real admin requests as a signed-in agent of one of the two organizations and prints
the median and worst of several runs.
"""

import os
import statistics
import time

from bench._scratch import use_scratch_database

GAPS = int(os.environ.get("BENCH_GAPS", "1000000"))
MEASURES = ("CMS130", "CMS125", "CMS124", "CMS122", "CMS165")
RUNS = int(os.environ.get("BENCH_RUNS", "7"))


def fill_gaps(count: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM gaps_caregap")
        if cursor.fetchone()[0] < count:
            print(f"filling {count:,} gaps ...", flush=True)
            _insert_gaps(cursor, count)
        cursor.execute("SELECT count(*) FROM gaps_gapsource")
        if cursor.fetchone()[0] == 0:
            print("filling gap sources ...", flush=True)
            _insert_sources(cursor)
        # Fresh statistics and visibility map, as autovacuum would leave them in production.
        cursor.execute("VACUUM ANALYZE gaps_caregap")
        cursor.execute("VACUUM ANALYZE gaps_gapsource")


def _insert_gaps(cursor, count: int) -> None:
    cursor.execute(
        """
        INSERT INTO gaps_caregap (organization_id, patient_id, measure_code, measure_id,
            period_start, period_end, primary_source, state, state_changed_at, next_step,
            next_step_due, due_date, missing, measure_weight, not_a_gap_reason,
            closed_by_engine, needs_coordination, created_at)
        SELECT organization_id, patient_id, cms, measure_id, DATE '2026-01-01',
            DATE '2026-12-31', 'engine', state, now(),
            CASE WHEN open THEN 'next_attempt' ELSE '' END,
            CASE WHEN open THEN CURRENT_DATE + ((patient_id * 7 + measure_id) %% 60)::int - 20
            END,
            DATE '2026-12-31', '', 2, '', false, false, now()
        FROM (
            SELECT p.id AS patient_id, p.organization_id, m.cms, m.id AS measure_id,
                s.state, s.state IN ('identified', 'in_review', 'validated', 'outreach',
                    'scheduled', 'completed', 'needs_review') AS open
            FROM patients_patient p
            JOIN gaps_measure m ON m.version = 'MP2026' AND m.cms = ANY(%s)
            CROSS JOIN LATERAL (SELECT (ARRAY['identified', 'in_review', 'validated',
                'outreach', 'outreach', 'scheduled', 'completed', 'closed', 'not_a_gap',
                'needs_review', 'declined', 'unreachable'])[1 + (p.id + m.id) %% 12]
                AS state) s
            ORDER BY p.id, m.id
            LIMIT %s
        ) AS rows
        """,
        [list(MEASURES), count],
    )


def _insert_sources(cursor) -> None:
    cursor.execute(
        """
        INSERT INTO gaps_gapsource (gap_id, kind, name, due_date, missing, reported_at)
        SELECT id, 'engine', 'engine', due_date, '', now() FROM gaps_caregap
        UNION ALL
        SELECT id, 'payer_list', 'Blue Horizon', due_date, 'screening', now()
        FROM gaps_caregap WHERE id % 5 = 0
        """
    )


def timed(client, url, params=None) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(url, params or {})
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(samples), max(samples)


def main() -> None:
    use_scratch_database(os.environ.get("BENCH_GAPS_ADMIN_DB", "carehub_bench_gaps_admin"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()

    from bench.patients_admin import fill as fill_patients
    from carehub import roles
    from carehub.history import get_system_user
    from carehub.models import User
    from carehub.services import assign_role, grant_organization
    from gaps.care_gaps import CareGap
    from patients.models import Organization
    from patients.services import create_organization

    system = get_system_user()
    organizations = [
        Organization.objects.filter(slug=slug).first()
        or create_organization(slug=slug, name=slug, kind="practice", actor=system, reason="bench")
        for slug in ("bench-a", "bench-b")
    ]
    fill_patients(organizations, -(-GAPS // len(MEASURES)))
    fill_gaps(GAPS)
    agent = User.objects.filter(username="bench-agent").first()
    if agent is None:
        agent = User.objects.create_user("bench-agent", is_staff=True)
        assign_role(agent, roles.AGENT, actor=system, reason="bench")
        grant_organization(agent, organizations[0], actor=system, reason="bench")
    client = Client()
    client.force_login(agent)

    gap = CareGap.objects.filter(organization=organizations[0], state="outreach").last()
    url = "/admin/gaps/caregap/"
    cases = [
        ("changelist, first page", url, {}),
        ("changelist, page 10", url, {"p": "10"}),
        ("state filter (outreach)", url, {"state": "outreach"}),
        ("measure filter", url, {"measure": "CMS125"}),
        ("due this week", url, {"due": "week"}),
        ("overdue + state", url, {"due": "overdue", "state": "scheduled"}),
        ("reported by payer list", url, {"source": "payer_list"}),
        ("exact MRN", url, {"q": gap.patient.mrn}),
        ("gap page", f"{url}{gap.pk}/change/", {}),
        ("gap history", f"{url}{gap.pk}/history/", {}),
        ("transition form", f"{url}{gap.pk}/transition/mark_scheduled/", {}),
    ]
    total = CareGap.objects.count()
    print(f"{total:,} gaps in 2 organizations; the agent sees one; {RUNS} runs each")
    print(f"{'request':<28}{'median ms':>12}{'worst ms':>12}")
    for label, path, params in cases:
        median, worst = timed(client, path, params)
        print(f"{label:<28}{median:>12.1f}{worst:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
