"""Synthetic FHIR patients for benchmarks and the scale dataset (never real people).

Codes are drawn from the value sets loaded in the database (the customer's VSAC files; CPT is
skipped), so the engine finds in the records what the measures look for: office visits,
hypertension with blood-pressure readings, diabetes with an HbA1c, colorectal and breast cancer
screenings, hospice, and the early-childhood vaccines.
"""

import datetime as dt
import random
import uuid


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
