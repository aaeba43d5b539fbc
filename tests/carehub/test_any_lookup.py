"""`field__any` (carehub.lookups): the values as one array constant on PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.models import Patient
from tests.patients.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_any_matches_exactly_the_listed_values(postgres_only, org_a, org_b):
    wanted = [PatientFactory(organization=org_a, mrn=f"A-{i}").mrn for i in range(12)]
    PatientFactory(organization=org_a, mrn="A-other")
    PatientFactory(organization=org_b, mrn="A-3")  # same MRN, another organization
    with CaptureQueriesContext(connection) as captured:
        found = set(
            Patient.objects.filter(organization=org_a, mrn__any=[*wanted, "absent"]).values_list(
                "mrn", flat=True
            )
        )
    assert found == set(wanted)
    (sql,) = [q["sql"] for q in captured.captured_queries]
    assert "= ANY(" in sql and " IN (" not in sql  # a filter, not a semi-join


def test_any_on_keys(postgres_only, org_a):
    patients = [PatientFactory(organization=org_a) for _ in range(3)]
    ids = [patients[0].pk, patients[2].pk]
    assert sorted(Patient.objects.filter(pk__any=ids).values_list("pk", flat=True)) == ids


def test_any_is_refused_outside_postgresql(org_a):
    if connection.vendor == "postgresql":
        pytest.skip("the refusal is for the other databases")
    with pytest.raises(NotImplementedError, match="use __in"):
        list(Patient.objects.filter(mrn__any=["x"]))


def test_any_on_a_foreign_key(postgres_only, org_a, org_b):
    mine, other = PatientFactory(organization=org_a), PatientFactory(organization=org_b)
    assert list(Patient.objects.filter(organization_id__any=[org_a.pk])) == [mine]
    assert other not in Patient.objects.filter(organization__any=[org_a.pk])
