"""Import and gap-engine throughput on a synthetic panel.

    python -m bench gaps_engine                      # PostgreSQL scratch DB, 100,000 patients
    BENCH_GAPS_PATIENTS=5000 python -m bench gaps_engine
    BENCH_GAPS_SQLITE=1 ...                          # a scratch SQLite file instead

Value sets come from ../shared/ecqm/valuesets (never shipped); codes for the synthetic records
are drawn from them. Prints import throughput (resources/s) and engine throughput
(patient-measure evaluations/s, all seven measures).
"""

import datetime as dt
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "ecqm" / "valuesets"


def _setup() -> str:
    if os.environ.get("BENCH_GAPS_SQLITE"):
        path = Path("/tmp/carehub_bench_gaps.sqlite3")
        path.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        os.environ.setdefault("DEBUG", "true")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carehub.settings")
        label = "SQLite"
    else:
        from bench._scratch import use_scratch_database

        use_scratch_database(os.environ.get("BENCH_GAPS_DB", "carehub_bench_gaps"))
        label = "PostgreSQL"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return label


def main() -> None:
    label = _setup()
    from django.core.management import call_command

    from carehub.history import get_system_user
    from carehub.synthetic import Codes, synthetic_bundle
    from gaps.services import evaluate_measures
    from patients.fhir.importer import import_documents
    from patients.models import Organization

    if not SHARED.is_dir():
        print(f"skipped: value sets not found at {SHARED}")
        return
    patients = int(os.environ.get("BENCH_GAPS_PATIENTS", "100000"))
    call_command("load_valuesets", str(SHARED / "qicore-2024"), stdout=open(os.devnull, "w"))  # noqa: SIM115
    actor = get_system_user()
    org, _ = Organization.objects.get_or_create(
        slug=f"bench-gaps-{uuid.uuid4().hex[:6]}", defaults={"name": "Bench"}
    )
    codes, rng, year = Codes(), random.Random(42), 2025
    documents = []
    resources = 0
    for index in range(patients):
        bundle = synthetic_bundle(rng, codes, year)
        resources += len(bundle["entry"])
        documents.append((f"bundle-{index}.json", json.dumps(bundle).encode()))
    started = time.perf_counter()
    for chunk in range(0, len(documents), 1000):
        run = import_documents(
            documents[chunk : chunk + 1000], organization=org, actor=actor, partial=True
        )
        assert run.counts["bundles_rejected"] == 0, run.report
    imported = time.perf_counter() - started
    print(
        f"{label}: imported {patients} patients, {resources} resources in {imported:.1f}s = "
        f"{resources / imported:,.0f} resources/s"
    )
    from gaps.engine import evaluate_many
    from gaps.measures import MEASURE_CODES, pick_version

    period = (dt.date(year, 1, 1), dt.date(year, 12, 31))
    started = time.perf_counter()
    evaluate_many(org, [pick_version(cms, year)[0] for cms in MEASURE_CODES], *period)
    elapsed = time.perf_counter() - started
    evaluations = patients * len(MEASURE_CODES)
    print(
        f"{label}: engine {evaluations} patient-measure evaluations "
        f"({len(MEASURE_CODES)} measures) in {elapsed:.1f}s = {evaluations / elapsed:,.0f}/s"
    )
    started = time.perf_counter()
    evaluate_measures(org, period_start=period[0], period_end=period[1], actor=actor)
    elapsed = time.perf_counter() - started
    print(
        f"{label}: evaluate_measures incl. storing results: {elapsed:.1f}s = "
        f"{evaluations / elapsed:,.0f}/s"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
