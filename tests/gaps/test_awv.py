"""Annual Wellness Visit (our rule, measures.md 6): 65+ or Medicare, a visit in 12 months."""

import pytest

from gaps.measures import oids
from tests.gaps.conftest import BundleBuilder, concept, evaluate_one, needs_shared, pick_code

pytestmark = [needs_shared, pytest.mark.django_db]
SOPT = "https://nahdo.org/sopt"


def senior(birth="1950-06-01") -> BundleBuilder:
    return BundleBuilder(birth_date=birth, gender="male")


def wellness(builder, when):
    builder.add(
        "Encounter",
        status="finished",
        type=[concept(pick_code(oids.ANNUAL_WELLNESS))],
        period={"start": when, "end": when},
    )


@pytest.mark.parametrize(
    "visit, status",
    [(None, "open"), ("2025-01-01", "closed"), ("2024-12-31", "open"), ("2026-01-02", "open")],
    ids=["no-visit", "first-day-of-window", "13-months-ago", "after-as-of-date"],
)
def test_a_wellness_visit_in_the_last_twelve_months_closes(
    org_a, system_user, valuesets_2024, visit, status
):
    builder = senior()
    if visit:
        wellness(builder, visit)
    assert evaluate_one(builder, org_a, system_user, "AWV", 2025).status == status


def test_under_65_without_medicare_is_not_applicable(org_a, system_user, valuesets_2024):
    assert evaluate_one(senior("1970-01-01"), org_a, system_user, "AWV", 2025).ip is False


def test_medicare_coverage_makes_a_younger_patient_eligible(org_a, system_user, valuesets_2024):
    builder = senior("1970-01-01")
    coverage = builder.add(
        "Coverage",
        status="active",
        type=concept({"system": SOPT, "code": "121"}),
        period={"start": "2020-01-01"},
    )
    coverage["beneficiary"] = coverage.pop("subject")
    result = evaluate_one(builder, org_a, system_user, "AWV", 2025)
    assert (result.ip, result.status) == (True, "open")


def test_a_deceased_patient_is_not_eligible(org_a, system_user, valuesets_2024):
    builder = senior()
    builder.entries[0]["deceasedDateTime"] = "2025-05-01"
    assert evaluate_one(builder, org_a, system_user, "AWV", 2025).ip is False
