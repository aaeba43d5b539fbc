"""Contact-policy throughput: check_contacts over a queryset of 10,000 patients.

    python -m bench consent_policy                      # PostgreSQL scratch DB
    BENCH_CONSENT_PATIENTS=50000 python -m bench consent_policy

Builds (once) an organization whose patients have a realistic mix of consents and preferences,
then prints, per channel, the median time of one check_contacts call over all of them, the
decisions per second and the number of queries, plus the per-patient check_contact for
comparison.
"""

import datetime as dt
import os
import random
import statistics
import time

PATIENTS = int(os.environ.get("BENCH_CONSENT_PATIENTS", "10000"))
RUNS = 5


def _setup() -> None:
    from bench._scratch import use_scratch_database

    use_scratch_database(os.environ.get("BENCH_CONSENT_DB", "carehub_bench_consent"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _populate(organization, count: int) -> None:
    from django.utils import timezone

    from carehub.history import bulk_create_with_history, get_system_user
    from consent.models import ChangePath, Consent, ContactPreference
    from patients.models import Patient

    rng = random.Random(7)
    actor = get_system_user()
    zones = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]
    existing = Patient.objects.filter(organization=organization).count()
    new = [
        Patient(
            organization=organization,
            mrn=f"B{n:08d}",
            given_name="Bench",
            family_name=f"Patient{n}",
            birth_date=dt.date(1950, 1, 1) + dt.timedelta(days=n % 20000),
            sex="female" if n % 2 else "male",
            phone=f"+1617555{n % 10000:04d}" if n % 10 else "unknown",
            email=f"p{n}@example.org" if n % 4 else "",
            address_line="1 Main St",
            postal_code="02110",
            timezone=zones[n % len(zones)],
        )
        for n in range(existing, count)
    ]
    bulk_create_with_history(new, actor=actor, reason="benchmark panel", batch_size=2000)
    now = timezone.now()
    consents, preferences = [], []
    for patient in new:
        for kind, share in (("sms_tcpa", 0.6), ("email", 0.4), ("portal", 0.3)):
            if rng.random() < share:
                consents.append(
                    Consent(
                        organization=organization,
                        patient=patient,
                        kind=kind,
                        status="granted" if rng.random() < 0.9 else "revoked",
                        method="imported",
                        captured_by="system",
                        path=ChangePath.IMPORT,
                        effective_at=now - dt.timedelta(days=rng.randint(1, 700)),
                        expires_at=None,
                        evidence="bench",
                        changed_at=now,
                    )
                )
        if rng.random() < 0.3:
            preferences.append(
                ContactPreference(
                    organization=organization,
                    patient=patient,
                    opted_out_channels=rng.sample(["sms", "email", "voice"], rng.randint(0, 2)),
                    portal_only=rng.random() < 0.05,
                    do_not_contact=rng.random() < 0.02,
                    contact_days=[1, 2, 3] if rng.random() < 0.2 else [],
                    path=ChangePath.IMPORT,
                    changed_at=now,
                )
            )
    bulk_create_with_history(consents, actor=actor, reason="benchmark consents")
    bulk_create_with_history(preferences, actor=actor, reason="benchmark preferences")


def main() -> None:
    _setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from consent.models import Channel
    from consent.policy import check_contact, check_contacts
    from patients.models import Organization, Patient

    organization, _ = Organization.objects.get_or_create(
        slug="bench-consent", defaults={"name": "Bench consent"}
    )
    if Patient.objects.filter(organization=organization).count() < PATIENTS:
        started = time.perf_counter()
        _populate(organization, PATIENTS)
        print(f"populated {PATIENTS} patients in {time.perf_counter() - started:.1f}s")
    patients = Patient.objects.filter(organization=organization).order_by("pk")[:PATIENTS]
    patients = Patient.objects.filter(pk__in=patients.values("pk"))
    at = timezone.now().replace(hour=16, minute=0)
    print(f"{connection.vendor}, {PATIENTS} patients, median of {RUNS} runs")
    print(f"{'channel':<8} {'ms/call':>9} {'decisions/s':>12} {'queries':>8} {'allowed':>8}")
    for channel in Channel.values:
        timings = []
        for _ in range(RUNS):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                decisions = check_contacts(
                    patients, channel=channel, content_class="general", at=at
                )
                timings.append(time.perf_counter() - started)
        median = statistics.median(timings)
        allowed = sum(d.allowed for d in decisions.values())
        print(
            f"{channel:<8} {median * 1000:>9.0f} {len(decisions) / median:>12,.0f} "
            f"{len(queries.captured_queries):>8} {allowed:>8}"
        )
    sample = list(patients[:500])
    started = time.perf_counter()
    for patient in sample:
        check_contact(patient, channel="sms", content_class="general", at=at)
    elapsed = time.perf_counter() - started
    print(f"one at a time (check_contact, sms): {len(sample) / elapsed:,.0f} decisions/s")


if __name__ == "__main__":
    main()
