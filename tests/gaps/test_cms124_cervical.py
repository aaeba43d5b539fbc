"""CMS124 Cervical Cancer Screening: our own cases from measures.md 3.3 (no official deck)."""

import pytest

from gaps.measures import oids
from tests.gaps.conftest import BundleBuilder, concept, evaluate_one, needs_shared, pick_code

pytestmark = [needs_shared, pytest.mark.django_db]
FEMALE_EXT = "248152002"


def woman(birth="1980-04-01", year=2025, **kwargs) -> BundleBuilder:
    builder = BundleBuilder(birth_date=birth, **kwargs)
    builder.encounter(oids.OFFICE_VISIT, f"{year}-03-03T09:00:00Z", f"{year}-03-03T09:30:00Z")
    return builder


def pap(builder, when, value=True):
    value_field = {"valueCodeableConcept": concept(pick_code(oids.PAP_TEST))} if value else None
    builder.lab(oids.PAP_TEST, when, value=value_field)


def populations(result):
    return (result.ip, result.denom, result.denex, result.numer, result.status)


@pytest.mark.parametrize(
    "birth, in_ip",
    [("2002-01-01", False), ("2001-12-31", True), ("1961-01-01", True), ("1960-12-31", False)],
    ids=["age-23", "age-24", "age-64", "age-65"],
)
def test_age_24_to_64_at_the_end_of_the_period(org_a, system_user, valuesets_2024, birth, in_ip):
    result = evaluate_one(woman(birth), org_a, system_user, "CMS124", 2025)
    assert result.ip is in_ip


def test_male_patients_are_not_in_the_mp2025_population(org_a, system_user, valuesets_2024):
    result = evaluate_one(woman(gender="male"), org_a, system_user, "CMS124", 2025)
    assert populations(result) == (False, False, False, False, "not-applicable")


def test_annual_wellness_visit_alone_does_not_qualify(org_a, system_user, valuesets_2024):
    builder = BundleBuilder(birth_date="1980-04-01")
    builder.encounter(oids.ANNUAL_WELLNESS, "2025-03-03T09:00:00Z")
    assert evaluate_one(builder, org_a, system_user, "CMS124", 2025).ip is False


@pytest.mark.parametrize(
    "when, closed",
    [("2023-01-01T00:00:00Z", True), ("2022-12-31T23:00:00Z", False), ("2026-01-01", False)],
    ids=["first-day-of-window", "day-before-window", "after-period"],
)
def test_pap_test_counts_within_three_years(org_a, system_user, valuesets_2024, when, closed):
    builder = woman()
    pap(builder, when)
    result = evaluate_one(builder, org_a, system_user, "CMS124", 2025)
    assert result.status == ("closed" if closed else "open")
    assert result.numer is closed


def test_a_pap_test_without_a_result_does_not_count(org_a, system_user, valuesets_2024):
    builder = woman()
    pap(builder, "2025-05-01", value=False)
    assert evaluate_one(builder, org_a, system_user, "CMS124", 2025).status == "open"


@pytest.mark.parametrize(
    "when, closed",
    [("2021-06-14", False), ("2021-06-15", True)],
    ids=["age-29-on-test-date", "age-30-on-test-date"],
)
def test_hpv_test_needs_age_30_on_the_test_date(org_a, system_user, valuesets_2024, when, closed):
    builder = woman(birth="1991-06-15")
    builder.lab(oids.HPV_TEST, when, value={"valueString": "negative"})
    assert evaluate_one(builder, org_a, system_user, "CMS124", 2025).numer is closed


@pytest.mark.parametrize(
    "end, excluded",
    [
        ("2025-06-01T10:00:00.000Z", True),
        ("2025-12-31", False),  # date-only equal to the instant bound: unknown, so false
        ("2025-12-31T23:00:00.000-05:00", False),  # after 23:59:59.999Z
        ("2025-12-31T23:59:59.999Z", True),
    ],
)
def test_hysterectomy_ends_on_or_before_the_end_instant(
    org_a, system_user, valuesets_2024, end, excluded
):
    builder = woman()
    builder.add(
        "Procedure",
        status="completed",
        code=concept(pick_code(oids.HYSTERECTOMY_NO_CERVIX)),
        performedPeriod={"start": "2025-01-01T00:00:00.000Z", "end": end},
    )
    result = evaluate_one(builder, org_a, system_user, "CMS124", 2025)
    assert result.denex is excluded
    assert result.status == ("excluded" if excluded else "open")


def test_absence_of_cervix_without_onset_excludes(org_a, system_user, valuesets_2024):
    builder = woman()
    builder.add(
        "Condition",
        code=concept(pick_code(oids.ABSENCE_OF_CERVIX)),
        clinicalStatus=concept(
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active",
            }
        ),
    )
    result = evaluate_one(builder, org_a, system_user, "CMS124", 2025)
    assert populations(result) == (True, True, True, False, "excluded")


def test_mp2026_takes_sex_from_the_us_core_extension(org_a, system_user, valuesets_2024):
    no_extension = evaluate_one(woman(year=2026), org_a, system_user, "CMS124", 2026)
    assert no_extension.measure.version == "MP2026" and no_extension.ip is False
    male_with_female_sex = woman(year=2026, gender="male", sex_extension=FEMALE_EXT)
    assert evaluate_one(male_with_female_sex, org_a, system_user, "CMS124", 2026).ip is True


def test_mp2025_needs_the_laboratory_category_and_mp2026_does_not(
    org_a, system_user, valuesets_2024
):
    def case(year):
        builder = woman(year=year, sex_extension=FEMALE_EXT)
        obs = builder.lab(oids.PAP_TEST, f"{year}-05-01", value={"valueString": "NILM"})
        del obs["category"]
        return evaluate_one(builder, org_a, system_user, "CMS124", year)

    assert case(2025).status == "open"
    assert case(2026).status == "closed"
