"""Version differences (measures.md 1.4, 3.1, 3.5): the same record, MP2025 vs MP2026."""

import pytest

from gaps.measures import oids
from tests.gaps.conftest import BundleBuilder, concept, evaluate_one, needs_shared, pick_code

pytestmark = [needs_shared, pytest.mark.django_db]
LOINC = "http://loinc.org"
ACTIVE = concept(
    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
)


def adult(year, status="finished", birth="1960-05-05") -> BundleBuilder:
    builder = BundleBuilder(birth_date=birth, gender="male")
    builder.encounter(oids.OFFICE_VISIT, f"{year}-02-03T09:00:00Z", status=status)
    return builder


def test_an_in_progress_visit_counts_in_2025_only(org_a, system_user, valuesets_2024):
    assert evaluate_one(adult(2025, "in-progress"), org_a, system_user, "CMS130", 2025).ip
    assert not evaluate_one(adult(2026, "in-progress"), org_a, system_user, "CMS130", 2026).ip


@pytest.mark.parametrize("year, closed", [(2025, True), (2026, False)])
def test_ct_colonography_needs_the_imaging_category_in_2026(
    org_a, system_user, valuesets_2024, year, closed
):
    builder = adult(year)
    builder.add(
        "Observation",
        status="final",
        code=concept(pick_code(oids.CT_COLONOGRAPHY)),
        effectiveDateTime=f"{year}-04-01",
    )
    assert evaluate_one(builder, org_a, system_user, "CMS130", year).numer is closed


@pytest.mark.parametrize("year, excluded", [(2025, True), (2026, False)])
def test_a_refuted_colon_cancer_excludes_only_before_2026(
    org_a, system_user, valuesets_2024, year, excluded
):
    builder = adult(year)
    builder.add(
        "Condition",
        code=concept(pick_code(oids.MALIGNANT_NEOPLASM_COLON)),
        clinicalStatus=ACTIVE,
        verificationStatus=concept(
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "refuted",
            }
        ),
        onsetDateTime="2010-01-01",
    )
    assert evaluate_one(builder, org_a, system_user, "CMS130", year).denex is excluded


def bp(builder, when, systolic, diastolic, **extra):
    builder.add(
        "Observation",
        status="final",
        code=concept({"system": LOINC, "code": "85354-9"}),
        effectiveDateTime=when,
        component=[
            {
                "code": concept({"system": LOINC, "code": "8480-6"}),
                "valueQuantity": {"value": systolic, "unit": "mmHg", "code": "mm[Hg]"},
            },
            {
                "code": concept({"system": LOINC, "code": "8462-4"}),
                "valueQuantity": {"value": diastolic, "unit": "mmHg", "code": "mm[Hg]"},
            },
        ],
        **extra,
    )


def hypertensive(year) -> BundleBuilder:
    builder = adult(year)
    builder.add(
        "Condition",
        code=concept(pick_code(oids.ESSENTIAL_HYPERTENSION)),
        clinicalStatus=ACTIVE,
        onsetDateTime="2015-01-01",
    )
    return builder


@pytest.mark.parametrize("year, closed", [(2025, False), (2026, True)])
def test_a_reading_from_the_prior_year_counts_through_the_2026_union(
    org_a, system_user, valuesets_2024, year, closed
):
    builder = hypertensive(year)
    bp(builder, f"{year - 1}-11-01", 128, 78)
    assert evaluate_one(builder, org_a, system_user, "CMS165", year).numer is closed


@pytest.mark.parametrize(
    "readings, closed",
    [
        ([("2025-06-01", 139, 89)], True),
        ([("2025-06-01", 140, 89)], False),
        ([("2025-03-01", 150, 95), ("2025-06-01", 130, 80)], True),
        ([("2025-06-01", 150, 70), ("2025-06-01", 130, 95)], True),  # lowest of each, same day
    ],
    ids=["139/89", "140/89", "latest-day-wins", "lowest-per-component"],
)
def test_the_most_recent_days_lowest_readings_decide(
    org_a, system_user, valuesets_2024, readings, closed
):
    builder = hypertensive(2025)
    for when, systolic, diastolic in readings:
        bp(builder, when, systolic, diastolic)
    assert evaluate_one(builder, org_a, system_user, "CMS165", 2025).numer is closed


def test_a_reading_taken_in_an_emergency_visit_does_not_count_in_2025(
    org_a, system_user, valuesets_2024
):
    builder = hypertensive(2025)
    builder.add(
        "Encounter",
        id="er-visit",
        status="finished",
        **{"class": {"code": "EMER"}},
        period={"start": "2025-06-01T10:00:00Z", "end": "2025-06-01T12:00:00Z"},
    )
    bp(builder, "2025-06-01T11:00:00Z", 120, 70, encounter={"reference": "Encounter/er-visit"})
    assert evaluate_one(builder, org_a, system_user, "CMS165", 2025).numer is False
