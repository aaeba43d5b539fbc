"""Policy-checked sends per second in one worker, beside the bare INSERT of the attempt row.

    DEBUG=true .venv/bin/python -m bench outreach_sends        # BENCH_SENDS=2000 default

On a scratch PostgreSQL database: N patients with TCPA consent in a time zone where it is
daytime now. Prints the rate of (a) a bare single-row INSERT of an attempt row, (b) planning an
attempt (insert with history, template lookup), (c) the full send in one process as one django-q2
worker runs it: row lock, guard_send (preference lock, policy, consents), rendering, the default
SMS store backend (its own row), and the outcome; the worker's task overhead is not included.
"""

import os
import time

SENDS = int(os.environ.get("BENCH_SENDS", "2000"))


def _daytime_zone() -> str:
    from django.utils import timezone

    offset = (13 - timezone.now().hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def main() -> None:
    from bench._scratch import use_scratch_database

    use_scratch_database(os.environ.get("BENCH_OUTREACH_DB", "carehub_bench_outreach_sends"))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from carehub.history import get_system_user
    from outreach.models import OutreachAttempt, Purpose
    from outreach.services import outbox
    from outreach.services.templates import save_template
    from patients.models import Organization, Patient
    from patients.services import create_organization

    system = get_system_user()
    org = Organization.objects.filter(slug="bench-sends").first() or create_organization(
        slug="bench-sends", name="Bench sends", kind="practice", actor=system, reason="bench"
    )
    if not org.contact_phone:
        org.contact_phone = "+16175550100"
        org.save()
    for purpose in (Purpose.DORMANT,):
        if not org_templates(org, purpose):
            save_template(
                org,
                actor=system,
                name="bench",
                purpose=purpose,
                channel="sms",
                body="Hello {{ patient_first_name }}, {{ practice_name }} would like to see you.",
            )
    zone = _daytime_zone()
    run = int(time.time())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO patients_patient (organization_id, mrn, source_id, given_name,
                family_name, birth_date, sex, phone, email, address_line, city, state,
                postal_code, preferred_language, timezone, status, member_id, created_at,
                updated_at)
            SELECT %s, 'S' || %s || '-' || n, '', 'Ann', 'Bench', DATE '1960-01-01', 'female',
                '+1617555' || lpad((n %% 10000)::text, 4, '0'), '', '', '', '', '', 'en', %s,
                'active', '', now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [org.pk, run, zone, SENDS],
        )
        cursor.execute(
            """
            INSERT INTO consent_consent (organization_id, patient_id, kind, proxy_name, status,
                method, captured_by, path, effective_at, evidence, changed_at)
            SELECT organization_id, id, 'sms_tcpa', '', 'granted', 'imported', 'system',
                'import', now() - interval '1 day', 'bench', now()
            FROM patients_patient WHERE mrn LIKE %s
            """,
            [f"S{run}-%"],
        )
    patients = list(Patient.objects.filter(mrn__startswith=f"S{run}-").order_by("pk"))

    # (a) the bare INSERT of one attempt row, one statement per row, autocommit.
    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for patient in patients:
            cursor.execute(
                """
                INSERT INTO outreach_outreachattempt (organization_id, patient_id, step, "window",
                    channel, content_class, rendered_subject, rendered_text, status, outcome,
                    blocked_reasons, response, next_step, clinical_concern, automated,
                    actor_id, planned_at, not_before, provider_message_id, error)
                VALUES (%s, %s, 'dormant', %s, 'sms', 'general', '', '', 'planned', '',
                    '[]', '', '', false, true, %s, %s, %s, '', '')
                """,
                [org.pk, patient.pk, f"bare-{run}", system.pk, now, now],
            )
    bare = time.perf_counter() - started

    # (b) planning through the service (history row, template, M2M), no task enqueued.
    from django.db import transaction

    started = time.perf_counter()
    ids = []
    for patient in patients:
        with transaction.atomic():
            attempt, _ = outbox.plan_attempt(
                patient,
                step="dormant",
                window=f"bench-{run}",
                channel="sms",
                actor=system,
                not_before=now + timezone.timedelta(seconds=1),  # so nothing is enqueued
            )
        ids.append(attempt.pk)
    planned = time.perf_counter() - started

    # (c) the full policy-checked send, as the worker's task body runs it.
    time.sleep(1)
    started = time.perf_counter()
    results = {}
    for attempt_id in ids:
        result = outbox.send_attempt(attempt_id)
        results[result] = results.get(result, 0) + 1
    sent = time.perf_counter() - started
    assert results.get("sent") == len(ids), results
    assert OutreachAttempt.objects.filter(pk__in=ids, status="sent").count() == len(ids)

    n = len(patients)
    print(f"{n:,} contacts on PostgreSQL, one process (one worker):")
    for label, seconds, unit in (
        ("bare INSERT of the attempt row", bare, "rows/s"),
        ("plan_attempt (row + history)", planned, "plans/s"),
        ("send_attempt, policy-checked", sent, "sends/s"),
    ):
        print(f"  {label:<34} {n / seconds:8,.0f} {unit:<8} ({seconds * 1000 / n:.2f} ms each)")
    print(f"  send results: {results}")
    # Where a send's time goes: its statements (the machine's load shows in the ms above).
    from django.test.utils import CaptureQueriesContext

    extra = Patient.objects.filter(mrn__startswith=f"S{run}-").order_by("pk").first()
    from django.db import reset_queries

    reset_queries()
    with CaptureQueriesContext(connection) as plan_queries:
        attempt, _ = outbox.plan_attempt(
            extra,
            step="dormant",
            window=f"one-{run}",
            channel="sms",
            actor=system,
            not_before=timezone.now() + timezone.timedelta(seconds=1),
        )
    time.sleep(1)
    reset_queries()
    with CaptureQueriesContext(connection) as send_queries:
        outbox.send_attempt(attempt.pk)
    print(
        f"  statements: plan_attempt {len(plan_queries)}, send_attempt {len(send_queries)} "
        f"(claim, guard_send, render, backend row, outcome, with their history rows)"
    )
    slowest = sorted(send_queries.captured_queries, key=lambda q: -float(q["time"]))[:5]
    for query in slowest:
        print(f"    {float(query['time']) * 1000:6.1f} ms  {query['sql'][:90]}")


def org_templates(org, purpose):
    from outreach.models import MessageTemplate

    return MessageTemplate.objects.filter(organization=org, purpose=purpose).exists()
