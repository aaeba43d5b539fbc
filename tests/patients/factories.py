import datetime

import factory
from factory.django import DjangoModelFactory

from patients.models import Organization, Patient, PayerProgram, Provider, Site


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: f"Organization {o.slug}")


class SiteFactory(DjangoModelFactory):
    class Meta:
        model = Site

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.Sequence(lambda n: f"Site {n}")


class ProviderFactory(DjangoModelFactory):
    class Meta:
        model = Provider

    organization = factory.SubFactory(OrganizationFactory)
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    npi = factory.Sequence(lambda n: f"{1000000000 + n}")


class PayerProgramFactory(DjangoModelFactory):
    class Meta:
        model = PayerProgram

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"P{n:03d}")
    name = factory.Sequence(lambda n: f"Program {n}")
    payer_name = "Acme Health"
    line_of_business = PayerProgram.LineOfBusiness.MEDICARE


class PatientFactory(DjangoModelFactory):
    class Meta:
        model = Patient

    organization = factory.SubFactory(OrganizationFactory)
    mrn = factory.Sequence(lambda n: f"MRN{n:07d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    birth_date = datetime.date(1960, 5, 17)
    sex = Patient.Sex.FEMALE
    phone = "+16175550100"
    email = factory.Sequence(lambda n: f"patient{n}@example.org")
