"""The cost of one gap-sequence tick at 1,000,000 gaps.

    DEBUG=true .venv/bin/python -m bench outreach_sequence     # BENCH_GAPS=1000000 default

Uses the gap worklist's synthetic data (bench.gaps_admin: patients and gaps straight in SQL, the
states spread over the lifecycle) in its own scratch database, gives half the patients TCPA
consent, sets the validated gaps' next step to the first contact, and then times:
- the three selection queries of a tick (first contacts due, second attempts due, reviews due)
  over the whole table, each with its plan's top line;
- one tick that acts on BENCH_TICK_PATIENTS patients (default 200) as the system user, and its
  rate; a scheduled tick acts on at most sequence.BATCH patients.
"""

import os
import time

GAPS = int(os.environ.get("BENCH_GAPS", "1000000"))
TICK_PATIENTS = int(os.environ.get("BENCH_TICK_PATIENTS", "200"))


def main() -> None:
    os.environ["BENCH_GAPS"] = str(GAPS)
    from bench._scratch import use_scratch_database

    use_scratch_database(os.environ.get("BENCH_OUTREACH_SEQ_DB", "carehub_bench_outreach_seq"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from bench.gaps_admin import MEASURES, fill_gaps
    from bench.patients_admin import fill as fill_patients
    from carehub.history import get_system_user
    from outreach.models import MessageTemplate, Purpose
    from outreach.services import sequence
    from outreach.services.templates import save_template
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
    for organization in organizations:
        for channel in ("sms", "letter", "portal", "email"):
            if not MessageTemplate.objects.filter(
                organization=organization, purpose=Purpose.GAP_OUTREACH, channel=channel
            ).exists():
                save_template(
                    organization,
                    actor=system,
                    name=f"bench {channel}",
                    purpose=Purpose.GAP_OUTREACH,
                    channel=channel,
                    body="Hello {{ patient_first_name }}, you are due for a health screening.",
                )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM consent_consent")
        if cursor.fetchone()[0] == 0:
            print("consents for half the patients ...", flush=True)
            cursor.execute(
                """
                INSERT INTO consent_consent (organization_id, patient_id, kind, proxy_name,
                    status, method, captured_by, path, effective_at, evidence, changed_at)
                SELECT organization_id, id, 'sms_tcpa', '', 'granted', 'imported', 'system',
                    'import', now() - interval '30 days', 'bench', now()
                FROM patients_patient WHERE id %% %s = 0
                """,
                [2],
            )
        cursor.execute(
            "UPDATE gaps_caregap SET next_step = 'first_outreach', next_step_due = CURRENT_DATE "
            "WHERE state = 'validated' AND next_step <> 'first_outreach'"
        )
        cursor.execute("ANALYZE")
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE state = 'validated') FROM gaps_caregap"
        )
        total, validated = cursor.fetchone()
    print(f"{total:,} gaps, {validated:,} validated (due for a first contact)")

    # The selection queries alone, over the whole table (what a tick reads before acting).
    now = timezone.now()
    for label, queryset in sequence.selections(now=now, limit=sequence.BATCH).items():
        started = time.perf_counter()
        rows = len(list(queryset))
        elapsed = (time.perf_counter() - started) * 1000
        plan = queryset.explain().splitlines()[0][:80]
        print(f"  select {label:<24} {elapsed:8.1f} ms  {rows:>5} rows   {plan}")

    started = time.perf_counter()
    done = sequence.tick_gap_sequence(now=now, limit=TICK_PATIENTS)
    elapsed = time.perf_counter() - started
    acted = sum(done.values())
    print(
        f"  one tick acting on {acted} patients: {elapsed:.1f} s "
        f"({elapsed * 1000 / max(acted, 1):.0f} ms per patient) {dict(done)}"
    )
    print(
        f"  a full tick ({sequence.BATCH:,} patients) would take about "
        f"{elapsed / max(acted, 1) * sequence.BATCH / 60:.1f} min at this rate"
    )
