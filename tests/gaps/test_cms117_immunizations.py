"""CMS117 Childhood Immunization Status: our own cases from measures.md 3.6."""

import pytest

from gaps.measures import oids
from gaps.measures.base import CPT, code
from gaps.measures.catalogue import MEASURES
from tests.gaps.conftest import BundleBuilder, concept, evaluate_one, needs_shared, pick_code

pytestmark = [needs_shared, pytest.mark.django_db]

BIRTH = "2023-03-10"  # two years old on Dec 31, 2025
# Dates inside W42 = [birth + 42 days, 2nd birthday]; the last ones are after the 1st birthday.
EARLY = ["2023-05-01", "2023-07-01", "2023-09-01", "2024-03-15"]
CVX = "http://hl7.org/fhir/sid/cvx"
ACTIVE = concept(
    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
)


def vaccine(builder, oid, when, *, not_in=(), status="completed"):
    builder.add(
        "Immunization",
        status=status,
        vaccineCode=concept(pick_code(oid, not_in=not_in)),
        occurrenceDateTime=when,
    )


def child(skip: str = "") -> BundleBuilder:
    """A two-year-old with every series complete, except the component named in `skip`."""
    builder = BundleBuilder(birth_date=BIRTH, gender="male")
    builder.encounter(oids.OFFICE_VISIT, "2025-04-01T10:00:00Z")
    series = {
        "DTaP": [(oids.DTAP_VACCINE, EARLY)],
        "IPV": [(oids.IPV_VACCINE, EARLY[:3])],
        "MMR": [(oids.MMR_VACCINE, ["2024-03-15"])],
        "Hib": [(oids.HIB3_VACCINE, EARLY[:3])],
        "HepB": [(oids.HEPB_VACCINE, ["2023-03-10", *EARLY[:2]])],
        "VZV": [(oids.VZV_VACCINE, ["2024-03-15"])],
        "PCV": [(oids.PCV_VACCINE, EARLY)],
        "HepA": [(oids.HEPA_VACCINE, ["2024-03-15"])],
        "Flu": [(oids.CHILD_FLU_VACCINE, EARLY[2:])],
    }
    for name, doses in series.items():
        if name == skip:
            continue
        for oid, dates in doses:
            for when in dates:
                not_in = (oids.HIB4_VACCINE,) if oid == oids.HIB3_VACCINE else ()
                vaccine(builder, oid, when, not_in=not_in)
    if skip != "RV":
        for when in EARLY[:2]:  # the 2-dose rotavirus schedule is the direct code CVX 119
            builder.add(
                "Immunization",
                status="completed",
                vaccineCode=concept({"system": CVX, "code": "119"}),
                occurrenceDateTime=when,
            )
    return builder


def result_of(builder, org, actor, year=2025):
    return evaluate_one(builder, org, actor, "CMS117", year)


def test_a_fully_vaccinated_two_year_old_closes_the_gap(org_a, system_user, valuesets_2024):
    result = result_of(child(), org_a, system_user)
    assert (result.ip, result.denom, result.denex, result.numer) == (True, True, False, True)
    assert result.status == "closed"


@pytest.mark.parametrize(
    "missing", ["DTaP", "IPV", "MMR", "Hib", "HepB", "VZV", "PCV", "HepA", "RV", "Flu"]
)
def test_each_missing_series_leaves_the_gap_open(org_a, system_user, valuesets_2024, missing):
    assert result_of(child(skip=missing), org_a, system_user).status == "open"


def test_only_age_two_is_in_the_population(org_a, system_user, valuesets_2024):
    older = child()
    older.entries[0]["birthDate"] = "2022-12-31"
    assert result_of(older, org_a, system_user).status == "not-applicable"


def test_two_doses_on_the_same_day_count_once(org_a, system_user, valuesets_2024):
    builder = child(skip="DTaP")
    for when in [*EARLY[:3], EARLY[2]]:
        vaccine(builder, oids.DTAP_VACCINE, when)
    assert result_of(builder, org_a, system_user).status == "open"


def test_a_dose_after_the_second_birthday_does_not_count(org_a, system_user, valuesets_2024):
    builder = child(skip="MMR")
    vaccine(builder, oids.MMR_VACCINE, "2025-03-11")
    assert result_of(builder, org_a, system_user).status == "open"
    on_birthday = child(skip="MMR")
    vaccine(on_birthday, oids.MMR_VACCINE, "2025-03-10")
    assert result_of(on_birthday, org_a, system_user).status == "closed"


def test_not_done_immunizations_never_count(org_a, system_user, valuesets_2024):
    builder = child(skip="VZV")
    vaccine(builder, oids.VZV_VACCINE, "2024-03-15", status="not-done")
    assert result_of(builder, org_a, system_user).status == "open"


def test_a_disease_history_satisfies_the_series(org_a, system_user, valuesets_2024):
    builder = child(skip="HepA")
    builder.add(
        "Condition",
        code=concept(pick_code(oids.HEPATITIS_A)),
        clinicalStatus=ACTIVE,
        onsetDateTime="2024-01-05",
    )
    assert result_of(builder, org_a, system_user).status == "closed"


def test_a_condition_without_status_or_abatement_has_no_prevalence(
    org_a, system_user, valuesets_2024
):
    builder = child(skip="HepA")
    builder.add("Condition", code=concept(pick_code(oids.HEPATITIS_A)), onsetDateTime="2024-01-05")
    assert result_of(builder, org_a, system_user).status == "open"


def test_immunodeficiency_in_the_first_two_years_excludes(org_a, system_user, valuesets_2024):
    builder = child()
    builder.add(
        "Condition",
        code=concept(pick_code(oids.SCID)),
        clinicalStatus=ACTIVE,
        onsetDateTime="2024-06-01",
    )
    result = result_of(builder, org_a, system_user)
    assert (result.denex, result.numer, result.status) == (True, False, "excluded")
    later = child()
    later.add(
        "Condition",
        code=concept(pick_code(oids.SCID)),
        clinicalStatus=ACTIVE,
        onsetDateTime="2025-03-11",
    )
    assert result_of(later, org_a, system_user).status == "closed"


def only_visit(builder: BundleBuilder, coding: dict) -> BundleBuilder:
    """The builder's patient with its one visit coded by `coding` alone."""
    visit = next(entry for entry in builder.entries if entry["resourceType"] == "Encounter")
    visit["type"] = [concept(coding)]
    return builder


def test_a_visit_coded_only_by_the_direct_reference_code_cpt_99211_counts(
    org_a, system_user, valuesets_2024
):
    """The official MP2025 case: the measure itself names CPT 99211 ("Office or other
    outpatient visit"), outside its value sets, so no customer file is needed for it."""
    visit = only_visit(child(), {"system": CPT, "code": "99211"})
    result = result_of(visit, org_a, system_user)
    assert (result.ip, result.denom, result.denex, result.numer) == (True, True, False, True)
    assert result.status == "closed"


def test_the_direct_code_matches_on_its_code_system_too(org_a, system_user, valuesets_2024):
    local = only_visit(child(), {"system": "urn:example:local-visit-codes", "code": "99211"})
    assert result_of(local, org_a, system_user).ip is False


def test_every_cms117_version_carries_cpt_99211_in_its_data():
    versions = [d for d in MEASURES if d.cms == "CMS117"]
    assert {d.version for d in versions} == {"MP2025", "MP2026"}
    assert all(code(CPT, "99211") in d.encounters for d in versions)
