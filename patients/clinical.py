"""Imported clinical data (FHIR R4), normalized for set-based measure queries.

One `ClinicalRecord` row per FHIR resource of a patient (Encounter, Condition, Procedure,
Observation, Immunization, DiagnosticReport, MedicationRequest/Dispense, DeviceRequest,
ServiceRequest, Coverage), and one `ClinicalCoding` row per (record, element, coding), so "every
record of the organization whose `code` is in value set X" is one indexed join.

Why these rows carry no simple-history: they are imported data, not operational records. The
`ImportRun` that wrote them records who, when, which files (SHA-256) and what counts; a row is
only ever changed by re-importing its resource (matched on patient + resource type + id), and
`import_run` then points at the run that last wrote it. Patients created or updated by an import
do keep history (actor = the importing user or the system user, reason naming the run).

Timing is stored the way the measures compare it (see gaps/engine): for start and end, the UTC
instant, the calendar date *as written in its own offset* (day-level tests), and the precision
(instant tests treat a less precise value equal to the bound as unknown).
"""

from django.conf import settings
from django.db import models

__all__ = [
    "ClinicalCoding",
    "ClinicalRecord",
    "FhirPatientDetail",
    "ImportRun",
    "Precision",
]


class Precision(models.IntegerChoices):
    NONE = 0, "none"
    YEAR = 1, "year"
    MONTH = 2, "month"
    DAY = 3, "day"
    MINUTE = 4, "minute"
    SECOND = 5, "second"
    MILLISECOND = 6, "millisecond"


class ImportRun(models.Model):
    """One `import_fhir` invocation (or one API upload): the audit record of imported rows."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partially imported"
        FAILED = "failed", "Failed (nothing imported)"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="import_runs"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="import_runs"
    )
    source = models.CharField(max_length=32, default="command")
    partial = models.BooleanField(default=False, help_text="--partial: land good bundles")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # [{"path", "sha256", "bytes", "bundles", "status", "errors": [...]}]
    files = models.JSONField(default=list)
    # {"bundles_ok", "bundles_rejected", "patients_created", "patients_updated",
    #  "records_created", "records_updated", "records_unchanged", "resources_skipped"}
    counts = models.JSONField(default=dict)
    report = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["organization", "-started_at"], name="importrun_org")]

    def __str__(self) -> str:
        return f"Import run #{self.pk}"


class FhirPatientDetail(models.Model):
    """What the measures read from the FHIR Patient that `Patient` does not hold as such.

    `birth_date` is nullable here: a FHIR Patient without birthDate has an unknown age and is in
    no initial population, while `Patient.birth_date` (required by the registry) then holds the
    1900-01-01 placeholder documented in patients/fhir/bundle.py.
    """

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.PROTECT, related_name="fhir_detail"
    )
    import_run = models.ForeignKey(ImportRun, on_delete=models.PROTECT, related_name="+")
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=16, blank=True)
    # US Core sex extension (MP2026 measures read only this), e.g. SNOMED 248152002.
    us_core_sex = models.CharField(max_length=32, blank=True)
    deceased = models.BooleanField(default=False)
    deceased_at = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"FHIR detail of patient #{self.patient_id}"


class ClinicalRecord(models.Model):
    # No index of their own for the three keys: the Meta indexes and the unique constraint lead
    # with them, and every index is written on each of the millions of imported rows (the four
    # redundant ones cost ~3 us of server CPU per imported resource).
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="clinical_records",
        db_index=False,
    )
    import_run = models.ForeignKey(
        ImportRun, on_delete=models.PROTECT, related_name="records", db_index=False
    )
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=128)
    content_hash = models.CharField(max_length=64)

    status = models.CharField(max_length=32, blank=True)
    intent = models.CharField(max_length=32, blank=True)
    # qicore-doNotPerform modifierExtension (exact URL) or the R4 `doNotPerform` element.
    do_not_perform = models.BooleanField(default=False)
    encounter_class = models.CharField(max_length=16, blank=True)
    # Observation.encounter: the last path segment of the reference (how the engine resolves it).
    encounter_ref = models.CharField(max_length=128, blank=True)
    # Condition: clinicalStatus active/recurrence/relapse with the condition-clinical system.
    clinical_active = models.BooleanField(default=False)
    # Condition: verificationStatus absent or confirmed/unconfirmed/provisional/differential.
    verified = models.BooleanField(default=True)

    # Timing. Start/end of the relevant interval: Encounter.period, Condition onset (start) and
    # abatement (end), effective[x], performed[x], occurrence[x], authoredOn (requests, as a
    # point), the derived supply period (MedicationRequest), Coverage.period.
    has_timing = models.BooleanField(default=False)
    start_at = models.DateTimeField(null=True, blank=True)
    start_date = models.DateField(null=True, blank=True)
    start_precision = models.PositiveSmallIntegerField(default=Precision.NONE)
    end_at = models.DateTimeField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    end_precision = models.PositiveSmallIntegerField(default=Precision.NONE)
    end_open = models.BooleanField(default=False, help_text="Period without end: open to +inf")
    # MedicationRequest whose supply period cannot be computed (the reference engine treats it
    # as overlapping every window).
    period_unknown = models.BooleanField(default=False)

    value_type = models.CharField(max_length=16, blank=True)  # quantity, codeable, string, ...
    value_num = models.FloatField(null=True, blank=True)
    value_unit = models.CharField(max_length=32, blank=True)
    value_comparator = models.CharField(max_length=4, blank=True)
    # [{"system", "code", "value", "unit", "comparator"}] e.g. systolic/diastolic of a BP panel.
    components = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["patient_id", "resource_type", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "resource_type", "resource_id"], name="clinical_record_source"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "resource_type"], name="clinical_org_type"),
            models.Index(fields=["import_run"], name="clinical_import_run"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


class ClinicalCoding(models.Model):
    """One coding of one element of a record; the join target of value-set membership."""

    class Element(models.TextChoices):
        CODE = "code", "code / type / vaccineCode / medication"
        MEDICATION_REF = "medref", "code of a referenced Medication"
        CATEGORY = "category", "category"
        VALUE = "value", "valueCodeableConcept"
        BODY_SITE = "bodysite", "bodySite"
        DISCHARGE = "discharge", "hospitalization.dischargeDisposition"

    record = models.ForeignKey(
        ClinicalRecord, on_delete=models.CASCADE, related_name="codings", db_index=False
    )  # indexed by coding_record
    # Copied from the record so a value-set lookup for one client is one index range.
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    element = models.CharField(max_length=10, choices=Element.choices)
    system = models.CharField(max_length=200)
    code = models.CharField(max_length=64)

    class Meta:
        indexes = [
            models.Index(fields=["system", "code", "organization"], name="coding_lookup"),
            models.Index(fields=["record"], name="coding_record"),
        ]

    def __str__(self) -> str:
        return f"{self.system}|{self.code}"
