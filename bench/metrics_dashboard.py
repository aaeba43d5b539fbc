"""The supervisor dashboard and the nightly metrics snapshot at 5,000,000 gaps.

    DEBUG=true .venv/bin/python -m bench metrics_dashboard      # BENCH_GAPS=5000000 default

Uses a scratch PostgreSQL database `carehub_bench_metrics`, filled once in SQL: patients, gaps
over every state (bench.gaps_admin), one creation history row per gap, a day of transitions
(1% of the gaps move, by 50 agents), a day of outreach (55,000 attempts: 20,000,000 a
year), appointments, follow-ups, open work items, and an engine result per gap. Then:

- times the nightly snapshot (`metrics.snapshots.take_snapshot`) over that data;
- spreads the snapshot's day rows over 365 days (what a year of nightly runs leaves) and times
  real dashboard requests as a supervisor: p50 and p95 of BENCH_RUNS runs per case.
"""

import datetime as dt
import os
import statistics
import time

from bench._scratch import use_scratch_database

GAPS = int(os.environ.get("BENCH_GAPS", "5000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
ATTEMPTS_PER_DAY = 55_000
AGENTS = int(os.environ.get("BENCH_AGENTS", "50"))


def _count(cursor, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {table}")
    return cursor.fetchone()[0]


def fill_operations(organizations, agents, system) -> None:
    """History, a day of events, results and work: what the snapshot reads."""
    from django.db import connection

    from carehub.history import _history_columns
    from gaps.care_gaps import CareGap

    history = CareGap.history.model._meta.db_table
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with connection.cursor() as cursor:
        # Audit triggers refuse UPDATE/DELETE only; the scratch data is inserted.
        if _count(cursor, history) == 0:
            table, copied = _history_columns(CareGap)
            names = ", ".join(copied)
            created = ", ".join("'identified'" if c == "state" else c for c in copied)
            print("filling gap history ...", flush=True)
            cursor.execute(
                f"INSERT INTO {table} ({names}, history_date, history_change_reason, "
                f"history_type, history_user_id) SELECT {created}, "
                "now() - interval '30 days', 'bench', '+', %s FROM gaps_caregap",
                [system.pk],
            )
            print("filling a day of transitions ...", flush=True)
            cursor.execute(
                f"INSERT INTO {table} ({names}, history_date, history_change_reason, "
                f"history_type, history_user_id) SELECT {names}, "
                "%s::date + make_interval(mins => (id %% 600)::int + 480), 'bench', '~', "
                "(%s::int[])[1 + (id / 97) %% %s] FROM gaps_caregap "
                "WHERE id %% 97 = 7 AND state <> 'identified'",
                [yesterday, [a.pk for a in agents], len(agents)],
            )
        if _count(cursor, "outreach_outreachattempt") == 0:
            print("filling a day of outreach ...", flush=True)
            cursor.execute(
                """
                INSERT INTO outreach_outreachattempt (organization_id, patient_id, step, "window",
                    channel, content_class, rendered_subject, rendered_text, status, outcome,
                    blocked_reasons, response, next_step, clinical_concern, automated,
                    actor_id, planned_at, not_before, attempted_at, provider_message_id, error)
                SELECT p.organization_id, p.id,
                    (ARRAY['gap_first', 'gap_second', 'dormant', 'agent_call'])[1 + n %% 4],
                    'bench' || n, CASE WHEN n %% 4 = 3 THEN 'phone' ELSE 'sms' END, 'general',
                    '', '', 'sent',
                    (ARRAY['delivered', 'no_answer', 'reached_scheduled', 'reached_declined',
                        'left_voicemail'])[1 + n %% 5], '[]', '', '', false, n %% 4 = 3,
                    CASE WHEN n %% 4 = 3 THEN (%s::int[])[1 + (n / 4) %% %s] ELSE %s END,
                    t, t, t, '', ''
                FROM generate_series(1, %s) AS n
                JOIN patients_patient p ON p.id = n
                CROSS JOIN LATERAL (
                    SELECT %s::date + make_interval(secs => (n * 37) %% 43200 + 28800) AS t
                ) AS w
                """,
                [[a.pk for a in agents], len(agents), system.pk, ATTEMPTS_PER_DAY, yesterday],
            )
            cursor.execute(
                """
                INSERT INTO outreach_appointment (organization_id, patient_id, site_id,
                    starts_at, duration_minutes, kind, status, booked_by_id, booked_at)
                SELECT p.organization_id, p.id, s.id,
                    %s::date + make_interval(mins => (p.id %% 480)::int + 480), 30, 'visit',
                    (ARRAY['completed', 'completed', 'completed', 'no_show', 'cancelled'])
                        [1 + p.id %% 5], %s, now() - interval '10 days'
                FROM patients_patient p
                JOIN LATERAL (SELECT id FROM patients_site WHERE organization_id =
                    p.organization_id LIMIT 1) s ON true
                WHERE p.id <= 6000
                """,
                [yesterday, agents[0].pk],
            )
            cursor.execute(
                """
                INSERT INTO outreach_followup (organization_id, patient_id, kind,
                    source_reference, received_at, due_at, done_at, done_by_id, lag_seconds,
                    note)
                SELECT p.organization_id, p.id,
                    CASE WHEN p.id %% 2 = 0 THEN 'callback' ELSE 'call_unconfirmed' END, '',
                    d - interval '6 hours', d, d + make_interval(mins => (p.id %% 240)::int - 120),
                    %s, 6 * 3600 + (p.id %% 240 - 120) * 60, ''
                FROM patients_patient p
                CROSS JOIN LATERAL (SELECT %s::date + interval '15 hours' AS d) AS w
                WHERE p.id <= 2500
                """,
                [agents[1].pk, yesterday],
            )
        if _count(cursor, "worklists_workitem") == 0:
            print("filling open work items ...", flush=True)
            for organization in organizations:
                cursor.execute(
                    "INSERT INTO worklists_queue (organization_id, name, role, kinds) "
                    "VALUES (%s, 'bench', 'Agent', '[]') ON CONFLICT DO NOTHING",
                    [organization.pk],
                )
            cursor.execute(
                """
                INSERT INTO worklists_workitem (organization_id, queue_id, kind, patient_id,
                    gap_id, state, reason, resolution, assignment, risk_rank, due_date,
                    measure_weight, sla_due_at, created_at)
                SELECT g.organization_id, q.id, 'outreach_call', g.patient_id, g.id, 'open',
                    'bench', '', '', 3, CURRENT_DATE, 2, now(),
                    now() - make_interval(days => (g.id % 45)::int)
                FROM gaps_caregap g
                JOIN worklists_queue q ON q.organization_id = g.organization_id
                    AND q.name = 'bench'
                WHERE g.state IN ('identified', 'in_review', 'validated', 'outreach')
                """
            )
        if _count(cursor, "gaps_measureresult") == 0:
            print("filling engine results ...", flush=True)
            cursor.execute(
                "INSERT INTO gaps_evaluationrun (organization_id, actor_id, period_start, "
                "period_end, measures, started_at, counts, warnings, status, error, "
                "chunks_total) VALUES (%s, %s, '2026-01-01', '2026-12-31', '[]', now(), '{}', "
                "'', 'succeeded', '', 0) RETURNING id",
                [organizations[0].pk, system.pk],
            )
            (run_id,) = cursor.fetchone()
            cursor.execute(
                """
                INSERT INTO gaps_measureresult (organization_id, patient_id, measure_id,
                    period_start, period_end, ip, denom, denex, numer, status, gap_status,
                    evidence, evaluation_run_id, evaluated_at)
                SELECT organization_id, patient_id, measure_id, period_start, period_end,
                    true, true, id %% 20 = 0, state = 'closed', 'denom',
                    CASE WHEN state = 'closed' THEN 'closed-gap' ELSE 'open-gap' END, '[]',
                    %s, now()
                FROM gaps_caregap
                """,
                [run_id],
            )
        for table in (
            history,
            "outreach_outreachattempt",
            "worklists_workitem",
            "gaps_measureresult",
            "gaps_caregap",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def spread_over_a_year(day: dt.date) -> None:
    """Copy the event rows of `day` to each of the 364 days before it (a year of nights), and
    total each month as the nightly runs would have."""
    from django.db import connection

    from metrics.models import AppointmentDay, AttemptDay, FollowUpDay, TransitionDay
    from metrics.snapshots import roll_up_month

    with connection.cursor() as cursor:
        for model in (TransitionDay, AttemptDay, AppointmentDay, FollowUpDay):
            table = model._meta.db_table
            cursor.execute(f"SELECT count(DISTINCT day) FROM {table}")
            if cursor.fetchone()[0] >= 365:
                continue
            columns = [
                f.column for f in model._meta.concrete_fields if f.column not in ("id", "day")
            ]
            names = ", ".join(columns)
            cursor.execute(
                f"INSERT INTO {table} (day, {names}) SELECT %s::date - back, {names} "
                f"FROM {table} CROSS JOIN generate_series(1, 364) AS back WHERE day = %s",
                [day, day],
            )
            cursor.execute(f"ANALYZE {table}")
    month = day.replace(day=1)
    for _ in range(13):
        roll_up_month(month)
        month = (month - dt.timedelta(days=1)).replace(day=1)


def _pass_second_factor(client, user) -> None:
    """Staff pages need a verified second factor: mark the session as the sign-in form would."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = device or TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def _months_back(today: dt.date, months: int) -> str:
    index = today.year * 12 + today.month - 1 - months
    return f"{index // 12}-{index % 12 + 1:02d}"


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
    return statistics.median(ordered), p95


def main() -> None:
    use_scratch_database(os.environ.get("BENCH_METRICS_DB", "carehub_bench_metrics"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()

    from bench.gaps_admin import MEASURES, fill_gaps
    from bench.patients_admin import fill as fill_patients
    from carehub import roles
    from carehub.history import get_system_user
    from carehub.models import User
    from carehub.services import assign_role, grant_organization
    from gaps.care_gaps import CareGap
    from metrics import snapshots
    from patients.models import Organization
    from patients.services import create_organization

    system = get_system_user()
    organizations = [
        Organization.objects.filter(slug=slug).first()
        or create_organization(slug=slug, name=slug, kind="practice", actor=system, reason="bench")
        for slug in ("bench-a", "bench-b")
    ]
    from patients.models import Site

    for organization in organizations:
        if not Site.objects.filter(organization=organization).exists():
            Site.objects.create(organization=organization, name="Main", code="main")
    started = time.perf_counter()
    fill_patients(organizations, -(-GAPS // len(MEASURES)))
    fill_gaps(GAPS)
    agents = []
    for n in range(AGENTS):
        agent = User.objects.filter(username=f"bench-agent-{n}").first()
        if agent is None:
            agent = User.objects.create_user(f"bench-agent-{n}", is_staff=True)
            assign_role(agent, roles.AGENT, actor=system, reason="bench")
            grant_organization(agent, organizations[0], actor=system, reason="bench")
        agents.append(agent)
    fill_operations(organizations, agents, system)
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)

    today = dt.date.today()
    clock = time.perf_counter()
    written = snapshots.take_snapshot(today)
    snapshot_seconds = time.perf_counter() - clock
    spread_over_a_year(today - dt.timedelta(days=1))

    supervisor = User.objects.filter(username="bench-supervisor").first()
    if supervisor is None:
        supervisor = User.objects.create_user("bench-supervisor", is_staff=True)
        assign_role(supervisor, roles.SUPERVISOR, actor=system, reason="bench")
        for organization in organizations:
            grant_organization(supervisor, organization, actor=system, reason="bench")
    client = Client()
    client.force_login(supervisor)
    _pass_second_factor(client, supervisor)
    url = "/admin/metrics/dashboard/"
    cases = [
        ("dashboard, 12 months", {}),
        ("one organization", {"organization": str(organizations[0].pk)}),
        ("one measure", {"measure": "CMS130"}),
        ("one agent", {"agent": str(agents[0].pk)}),
        ("24 months", {"start": _months_back(today, 23)}),
        ("CSV export", {"format": "csv"}),
    ]
    total = CareGap.objects.count()
    print(
        f"{total:,} gaps, {ATTEMPTS_PER_DAY:,} attempts a day, {AGENTS} agents, "
        "2 organizations, a year of snapshot days"
    )
    print(f"nightly snapshot: {snapshot_seconds:.1f} s ({written})")
    print(f"{'dashboard request':<24}{'p50 ms':>10}{'p95 ms':>10}   ({RUNS} runs each)")
    for label, params in cases:
        samples = []
        for _ in range(RUNS):
            clock = time.perf_counter()
            response = client.get(url, params)
            if params.get("format") == "csv":
                b"".join(response.streaming_content)
            samples.append((time.perf_counter() - clock) * 1000)
            assert response.status_code == 200, (label, response.status_code)
        p50, p95 = percentiles(samples)
        print(f"{label:<24}{p50:>10.1f}{p95:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
