"""Patient admin at a million patients: changelist, searches, filters and the patient page.

    DEBUG=true .venv/bin/python -m bench patients_admin        # BENCH_PATIENTS=1000000 default

Uses a scratch PostgreSQL database `carehub_bench` (BENCH_DATABASE_URL to choose another),
fills it once with synthetic patients in SQL, then times real admin requests (Django test client,
full middleware, a signed-in agent) and prints the median and worst of several runs.
"""

import os
import statistics
import time

from bench._scratch import use_scratch_database

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "7"))


def fill(organizations, count: int) -> None:
    """Synthetic rows straight in SQL: a benchmark database, history of them is not the point."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM patients_patient")
        have = cursor.fetchone()[0]
        if have >= count:
            return
        print(f"filling {count - have:,} patients ...", flush=True)
        cursor.execute(
            """
            INSERT INTO patients_patient (organization_id, mrn, source_id, given_name, family_name,
                birth_date, sex, phone, email, address_line, city, state, postal_code,
                preferred_language, timezone, status, member_id, created_at, updated_at)
            SELECT (ARRAY[%s, %s])[1 + n %% 2], 'BM' || lpad(n::text, 8, '0'), '',
                (ARRAY['Ann','Bob','Carla','Dmitri','Eve','Farah','Gus','Hana'])[1 + n %% 8],
                -- surnames spread like real ones: a four-letter prefix matches a handful of rows
                initcap(translate(substr(md5(n::text), 1, 7), '0123456789', 'ghijklmnop')),
                DATE '1940-01-01' + (n %% 25000), (ARRAY['female','male'])[1 + n %% 2],
                '+1617555' || lpad((n %% 10000)::text, 4, '0'), '', '', '', '', '', 'en',
                'America/New_York', (ARRAY['active','active','active','moved'])[1 + (n / 2) %% 4],
                'MB' || n::text, now(), now()
            FROM generate_series(%s, %s) AS n
            """,
            [organizations[0].pk, organizations[1].pk, have + 1, count],
        )
        cursor.execute("ANALYZE patients_patient")


def timed(client, url, params=None) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(url, params or {})
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(samples), max(samples)


def main() -> None:
    use_scratch_database("carehub_bench")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()  # lets the test client run against ALLOWED_HOSTS

    from carehub import roles
    from carehub.history import get_system_user
    from carehub.models import User
    from carehub.services import assign_role, grant_organization
    from patients.models import Organization, Patient
    from patients.services import create_organization

    system = get_system_user()
    organizations = [
        Organization.objects.filter(slug=slug).first()
        or create_organization(slug=slug, name=slug, kind="practice", actor=system, reason="bench")
        for slug in ("bench-a", "bench-b")
    ]
    fill(organizations, PATIENTS)
    agent = User.objects.filter(username="bench-agent").first()
    if agent is None:
        agent = User.objects.create_user("bench-agent", is_staff=True)
        assign_role(agent, roles.AGENT, actor=system, reason="bench")
        grant_organization(agent, organizations[0], actor=system, reason="bench")
    client = Client()
    client.force_login(agent)

    one = Patient.objects.filter(organization=organizations[0]).order_by("pk").last()
    url = "/admin/patients/patient/"
    cases = [
        ("changelist, first page", url, {}),
        ("changelist, page 10", url, {"p": "10"}),
        ("exact MRN", url, {"q": one.mrn}),
        ("exact member id", url, {"q": one.member_id}),
        ("name prefix (4 letters)", url, {"q": one.family_name[:4]}),
        ("name prefix (2 letters)", url, {"q": one.family_name[:2]}),
        ("family, given prefix", url, {"q": f"{one.family_name}, {one.given_name[:2]}"}),
        ("status filter", url, {"status": "moved"}),
        ("patient page", f"{url}{one.pk}/change/", {}),
        ("patient history", f"{url}{one.pk}/history/", {}),
        ("API list", "/api/patients/", {}),
    ]
    total = Patient.objects.count()
    print(f"{total:,} patients in 2 organizations; the agent sees one; {RUNS} runs each")
    print(f"{'request':<28}{'median ms':>12}{'worst ms':>12}")
    for label, path, params in cases:
        median, worst = timed(client, path, params)
        print(f"{label:<28}{median:>12.1f}{worst:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
