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


class Codes:
    def __init__(self):
        from gaps.models import ValueSetCode

        self.by_oid = {}
        for oid, system, code in ValueSetCode.objects.exclude(
            system="http://www.ama-assn.org/go/cpt"
        ).values_list("value_set__oid", "system", "code"):
            self.by_oid.setdefault(oid, []).append({"system": system, "code": code})

    def concept(self, oid, rng):
        return {"coding": [rng.choice(self.by_oid[oid])]}


def synthetic_bundle(rng: random.Random, codes: Codes, year: int) -> dict:
    from gaps.measures import oids

    pid = str(uuid.uuid4())
    age = rng.randint(1, 90)
    birth = dt.date(year - age, rng.randint(1, 12), rng.randint(1, 28))
    resources = [
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": "Bench", "given": ["P"]}],
            "gender": rng.choice(["female", "male"]),
            "birthDate": birth.isoformat(),
        }
    ]

    def add(kind, **fields):
        link = "patient" if kind == "Immunization" else "subject"
        resources.append(
            {
                "resourceType": kind,
                "id": f"{kind}-{len(resources)}",
                link: {"reference": f"Patient/{pid}"},
                **fields,
            }
        )

    def day(years_back=0):
        return dt.date(year - years_back, rng.randint(1, 12), rng.randint(1, 28)).isoformat()

    lab = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ]
    active = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
        ]
    }
    for _ in range(rng.randint(1, 4)):
        when = day(rng.randint(0, 2))
        add(
            "Encounter",
            status="finished",
            type=[codes.concept(oids.OFFICE_VISIT, rng)],
            period={"start": when, "end": when},
        )
    if rng.random() < 0.3:
        add(
            "Condition",
            code=codes.concept(oids.ESSENTIAL_HYPERTENSION, rng),
            clinicalStatus=active,
            onsetDateTime=day(5),
        )
        for _ in range(rng.randint(1, 3)):
            add(
                "Observation",
                status="final",
                code={"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                effectiveDateTime=day(),
                component=[
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        "valueQuantity": {"value": rng.randint(110, 160), "code": "mm[Hg]"},
                    },
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                        "valueQuantity": {"value": rng.randint(60, 100), "code": "mm[Hg]"},
                    },
                ],
            )
    if rng.random() < 0.12:
        add(
            "Condition",
            code=codes.concept(oids.DIABETES, rng),
            clinicalStatus=active,
            onsetDateTime=day(8),
        )
        add(
            "Observation",
            status="final",
            category=lab,
            code=codes.concept(oids.HBA1C_LAB, rng),
            effectiveDateTime=day(),
            valueQuantity={"value": round(rng.uniform(5, 12), 1), "code": "%"},
        )
    if rng.random() < 0.3:
        add(
            "Observation",
            status="final",
            category=lab,
            code=codes.concept(oids.FOBT, rng),
            effectiveDateTime=day(),
            valueString="negative",
        )
    if rng.random() < 0.2:
        when = day(rng.randint(0, 12))
        add(
            "Procedure",
            status="completed",
            code=codes.concept(oids.COLONOSCOPY, rng),
            performedPeriod={"start": when, "end": when},
        )
    if rng.random() < 0.25:
        add(
            "Observation",
            status="final",
            code=codes.concept(oids.MAMMOGRAPHY, rng),
            effectiveDateTime=day(rng.randint(0, 2)),
        )
    if rng.random() < 0.02:
        add(
            "Encounter",
            status="finished",
            type=[codes.concept(oids.HOSPICE_ENCOUNTER, rng)],
            period={"start": day()},
        )
    if age <= 3:
        for oid in (oids.DTAP_VACCINE, oids.IPV_VACCINE, oids.PCV_VACCINE, oids.HEPB_VACCINE):
            for n in range(4):
                when = birth + dt.timedelta(days=60 + 90 * n)
                add(
                    "Immunization",
                    status="completed",
                    vaccineCode=codes.concept(oid, rng),
                    occurrenceDateTime=when.isoformat(),
                )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in resources],
    }


def main() -> None:
    label = _setup()
    from django.core.management import call_command

    from carehub.history import get_system_user
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
