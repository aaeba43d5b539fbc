"""CMS122 Glycemic Status > 9 % (inverse): our own cases from measures.md 3.4."""

import pytest

from gaps.measures import oids
from tests.gaps.conftest import BundleBuilder, concept, evaluate_one, needs_shared, pick_code

pytestmark = [needs_shared, pytest.mark.django_db]
ACTIVE = concept(
    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
)


def diabetic(status=ACTIVE) -> BundleBuilder:
    builder = BundleBuilder(birth_date="1965-02-02")
    builder.encounter(oids.OFFICE_VISIT, "2025-02-03T09:00:00Z")
    fields = {"code": concept(pick_code(oids.DIABETES)), "onsetDateTime": "2015-01-01"}
    if status:
        fields["clinicalStatus"] = status
    builder.add("Condition", **fields)
    return builder


def percent(value):
    return {
        "valueQuantity": {
            "value": value,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        }
    }


def a1c(builder, when, value, status="final"):
    builder.lab(oids.HBA1C_LAB, when, value=value, status=status)


def outcome(builder, org, actor):
    result = evaluate_one(builder, org, actor, "CMS122", 2025)
    assert result.ip and result.denom and not result.denex
    return result.numer, result.status


def test_no_test_in_the_period_is_poor_control(org_a, system_user, valuesets_2024):
    assert outcome(diabetic(), org_a, system_user) == (True, "open")


@pytest.mark.parametrize(
    "results, expected",
    [
        ([("2025-03-01", 8.0)], (False, "closed")),
        ([("2025-03-01", 9.0)], (False, "closed")),
        ([("2025-03-01", 9.1)], (True, "open")),
        ([("2025-03-01", 10.0), ("2025-09-01", 8.0)], (False, "closed")),
        ([("2025-03-01", 8.0), ("2025-09-01", 10.0)], (True, "open")),
        ([("2025-09-01", 8.0), ("2025-09-01", 10.0)], (False, "closed")),
    ],
    ids=["8", "9-is-not-above-9", "9.1", "10-then-8", "8-then-10", "same-day-lowest-wins"],
)
def test_the_lowest_result_of_the_last_day_decides(
    org_a, system_user, valuesets_2024, results, expected
):
    builder = diabetic()
    for when, value in results:
        a1c(builder, when, percent(value))
    assert outcome(builder, org_a, system_user) == expected


def test_a_value_less_result_on_the_last_day_ranks_lowest(org_a, system_user, valuesets_2024):
    builder = diabetic()
    a1c(builder, "2025-09-01", percent(8.0))
    a1c(builder, "2025-09-01", {"dataAbsentReason": concept({"code": "unknown"})})
    assert outcome(builder, org_a, system_user) == (True, "open")


def test_a_coded_result_closes_the_gap(org_a, system_user, valuesets_2024):
    builder = diabetic()
    a1c(
        builder,
        "2025-09-01",
        {
            "valueCodeableConcept": concept(
                {"system": "http://snomed.info/sct", "code": "373066001"}
            )
        },
    )
    assert outcome(builder, org_a, system_user) == (False, "closed")


def test_ifcc_mmol_per_mol_converts_as_the_engine_does(org_a, system_user, valuesets_2024):
    builder = diabetic()
    a1c(
        builder,
        "2025-09-01",
        {"valueQuantity": {"value": 100, "unit": "mmol/mol", "code": "mmol/mol"}},
    )
    assert outcome(builder, org_a, system_user) == (True, "open")


def test_a_preliminary_result_is_no_result(org_a, system_user, valuesets_2024):
    builder = diabetic()
    a1c(builder, "2025-09-01", percent(6.0), status="preliminary")
    assert outcome(builder, org_a, system_user) == (True, "open")


def test_an_inactive_diabetes_without_abatement_is_not_in_the_population(
    org_a, system_user, valuesets_2024
):
    inactive = concept(
        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "inactive"}
    )
    result = evaluate_one(diabetic(status=inactive), org_a, system_user, "CMS122", 2025)
    assert (result.ip, result.status) == (False, "not-applicable")


def test_palliative_care_excludes(org_a, system_user, valuesets_2024):
    builder = diabetic()
    builder.add(
        "Encounter",
        status="finished",
        type=[concept(pick_code(oids.PALLIATIVE_ENCOUNTER))],
        period={"start": "2024-12-30", "end": "2025-01-02"},
    )
    result = evaluate_one(builder, org_a, system_user, "CMS122", 2025)
    assert (result.denex, result.numer, result.status) == (True, False, "excluded")
