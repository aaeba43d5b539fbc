"""Organizations (clients of the back office), their sites, providers, payer programs and patients.

Every row below an Organization carries `organization_id`, so scoping is one join or one
`organization_id IN (...)` filter, never a permission row per patient.
"""

from django.db import models
from simple_history.models import HistoricalRecords

from patients.phones import phone_digits_expression


class Organization(models.Model):
    class Kind(models.TextChoices):
        PRACTICE = "practice", "Clinic / practice group"
        ACO = "aco", "ACO"
        MSO = "mso", "MSO"
        PAYER = "payer", "Payer"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PRACTICE)
    is_active = models.BooleanField(default=True)
    # Given to patients who text HELP.
    contact_phone = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        permissions = [("access_organization", "Can work with the organization's records")]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="sites")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    timezone = models.CharField(max_length=64, default="America/New_York")
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="site_code_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class Provider(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="providers"
    )
    npi = models.CharField("NPI", max_length=10, blank=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    credentials = models.CharField(max_length=40, blank=True)
    specialty = models.CharField(max_length=100, blank=True)
    site = models.ForeignKey(
        Site, on_delete=models.SET_NULL, null=True, blank=True, related_name="providers"
    )
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization_id", "family_name", "given_name"]
        indexes = [models.Index(fields=["organization", "family_name"])]

    def __str__(self) -> str:
        suffix = f", {self.credentials}" if self.credentials else ""
        return f"{self.family_name}, {self.given_name}{suffix}"


class PayerProgram(models.Model):
    class LineOfBusiness(models.TextChoices):
        MEDICARE = "medicare", "Medicare"
        MEDICARE_ADVANTAGE = "medicare_advantage", "Medicare Advantage"
        MEDICAID = "medicaid", "Medicaid"
        COMMERCIAL = "commercial", "Commercial"
        OTHER = "other", "Other"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="payer_programs"
    )
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    payer_name = models.CharField(max_length=200)
    line_of_business = models.CharField(max_length=24, choices=LineOfBusiness.choices)
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="payer_code_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class PatientQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=Patient.Status.ACTIVE)


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        MOVED = "moved", "Moved"
        DISENROLLED = "disenrolled", "Disenrolled"
        DECEASED = "deceased", "Deceased"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="patients"
    )
    mrn = models.CharField("MRN", max_length=64)
    # The id the client's FHIR server gives the patient; imports match on it.
    source_id = models.CharField("FHIR id", max_length=64, blank=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=8, choices=Sex.choices)
    phone = models.CharField(max_length=32, blank=True)
    email = models.EmailField(blank=True)
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True)
    postal_code = models.CharField(max_length=10, blank=True)
    preferred_language = models.CharField(max_length=16, default="en")
    timezone = models.CharField(max_length=64, default="America/New_York")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    attributed_provider = models.ForeignKey(
        Provider, on_delete=models.SET_NULL, null=True, blank=True, related_name="patients"
    )
    attributed_site = models.ForeignKey(
        Site, on_delete=models.SET_NULL, null=True, blank=True, related_name="patients"
    )
    payer_program = models.ForeignKey(
        PayerProgram, on_delete=models.SET_NULL, null=True, blank=True, related_name="patients"
    )
    member_id = models.CharField("payer member id", max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["organization_id", "family_name", "given_name", "id"]
        permissions = [("export_patient", "Can export patient lists")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "mrn"], name="patient_mrn_per_org"),
        ]
        indexes = [
            models.Index(fields=["mrn"], name="patient_mrn"),
            models.Index(fields=["member_id"], name="patient_member_id"),
            models.Index(fields=["source_id"], name="patient_source_id"),
            # Inbound texts are matched on this exact expression (patients.phones).
            models.Index(phone_digits_expression(), name="patient_phone_digits"),
            # Name-prefix search (`UPPER(family_name) LIKE 'ABC%'`) uses a PostgreSQL-only
            # pattern index created in migration 0002_patient_name_prefix_index.
            models.Index(
                fields=["organization", "family_name", "given_name", "id"],
                name="patient_org_name_order",
            ),
            # Filtered lists keep the name order inside the index: a range scan, never a sort.
            models.Index(
                fields=["organization", "status", "family_name", "given_name", "id"],
                name="patient_org_status_name",
            ),
            models.Index(
                fields=["attributed_site", "family_name", "given_name", "id"],
                name="patient_site_name",
            ),
        ]

    def __str__(self) -> str:
        # Never a name: __str__ ends up in logs, messages and error reports.
        return f"Patient #{self.pk}"

    @property
    def display_name(self) -> str:
        return f"{self.family_name}, {self.given_name}"


from patients.clinical import *  # noqa: E402,F403
