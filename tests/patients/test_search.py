import pytest

from patients.models import Patient
from patients.selectors import search_patients
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org_a):
    return {
        "smith_john": PatientFactory(
            organization=org_a,
            family_name="Smith",
            given_name="John",
            mrn="A100",
            member_id="MBR-9",
        ),
        "smithers_ann": PatientFactory(
            organization=org_a, family_name="Smithers", given_name="Ann", mrn="A200"
        ),
        "jones_smith": PatientFactory(
            organization=org_a, family_name="Jones", given_name="Smith", mrn="A300"
        ),
    }


def found(term):
    return set(search_patients(Patient.objects.all(), term).values_list("mrn", flat=True))


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("smi", {"A100", "A200"}),  # family-name prefix, any case; not given names
        ("SMITH", {"A100", "A200"}),
        ("smith, jo", {"A100"}),
        ("smith jo", {"A100"}),
        ("Smithers, A", {"A200"}),
        ("A100", {"A100"}),  # exact MRN
        ("A10", set()),  # MRNs match exactly, never by prefix
        ("MBR-9", {"A100"}),  # exact payer member id
        ("  smith ,  john ", {"A100"}),
        ("", {"A100", "A200", "A300"}),
    ],
)
def test_search_by_exact_identifier_or_name_prefix(people, term, expected):
    assert found(term) == expected
