"""Value sets, the measure catalogue and the engine's results.

Value sets are loaded from customer-provided VSAC files (`load_valuesets`); CPT codes are
licensed, so no code list ships with CareHub. Measure *logic* lives as data in gaps/measures/;
`Measure` rows mirror that catalogue for admin and foreign keys.

`MeasureResult` rows are derived data: the engine recomputes them from the imported clinical
records and overwrites them per (patient, measure, version, period), so they carry no per-row
history; `EvaluationRun` records who ran what and when.
"""

from django.conf import settings
from django.db import models


class ValueSet(models.Model):
    oid = models.CharField(max_length=128)
    version = models.CharField(max_length=64, blank=True)
    url = models.CharField(max_length=300)
    name = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=300, blank=True)
    expansion_identifier = models.CharField(max_length=200, blank=True)
    expansion_timestamp = models.DateTimeField(null=True, blank=True)
    declared_total = models.IntegerField(null=True, blank=True)
    code_count = models.IntegerField(default=0)
    source_file = models.CharField(max_length=500, blank=True)
    content_hash = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now=True)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["oid", "-expansion_timestamp"]
        constraints = [
            models.UniqueConstraint(
                fields=["oid", "version", "expansion_identifier"], name="valueset_identity"
            )
        ]
        indexes = [models.Index(fields=["oid"], name="valueset_oid")]

    def __str__(self) -> str:
        return f"{self.title or self.name or self.oid} ({self.version})"

    @property
    def truncated(self) -> bool:
        return self.declared_total is not None and self.declared_total > self.code_count


class ValueSetCode(models.Model):
    value_set = models.ForeignKey(ValueSet, on_delete=models.CASCADE, related_name="codes")
    system = models.CharField(max_length=200)
    code = models.CharField(max_length=64)
    display = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["value_set", "system", "code"], name="valueset_code_once"
            )
        ]
        indexes = [models.Index(fields=["system", "code"], name="valueset_code_lookup")]

    def __str__(self) -> str:
        return f"{self.system}|{self.code}"


class Measure(models.Model):
    """One version of one measure, mirrored from gaps/measures (the logic is there)."""

    cms = models.CharField(max_length=16)
    version = models.CharField(max_length=16)
    title = models.CharField(max_length=200)
    inverse = models.BooleanField(default=False)
    first_year = models.IntegerField()
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["cms", "version"]
        constraints = [
            models.UniqueConstraint(fields=["cms", "version"], name="measure_version_once")
        ]

    def __str__(self) -> str:
        return f"{self.cms} {self.version}"


class EvaluationRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    period_start = models.DateField()
    period_end = models.DateField()
    measures = models.JSONField(default=list)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict)
    warnings = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    # A sharded run is split into chunk tasks (EvaluationChunk); 0 for a run done in one go.
    chunks_total = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Evaluation run #{self.pk}"


class EvaluationChunk(models.Model):
    """One range of patient ids of a sharded run, evaluated, stored and synced in one
    transaction by one task. `done` flips in that same transaction, so a worker killed midway
    leaves the chunk pending and its rerun starts from a clean slate."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.PROTECT, related_name="chunks")
    first_patient_id = models.BigIntegerField()
    last_patient_id = models.BigIntegerField()
    done = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "first_patient_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "first_patient_id"], name="evaluation_chunk_once"
            )
        ]

    def __str__(self) -> str:
        return f"Evaluation chunk #{self.pk}"


class MeasureResultQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status=MeasureResult.Status.OPEN)


class MeasureResult(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        EXCLUDED = "excluded", "Excluded"
        NOT_APPLICABLE = "not-applicable", "Not applicable"

    class GapStatus(models.TextChoices):
        # Da Vinci DEQM gaps-status codes; "excluded" is exported per settings (see export).
        OPEN = "open-gap", "open-gap"
        CLOSED = "closed-gap", "closed-gap"
        PROSPECTIVE = "prospective-gap", "prospective-gap"
        NOT_APPLICABLE = "not-applicable", "not-applicable"

    # organization and patient lead result_chunk and measure_result_once: no index of their
    # own to write for each of the 7,000,000 results of a large client's year.
    # Nor a database constraint on any key: PostgreSQL checks a foreign key row by row at
    # commit, locking the referenced row, and a result is derived data whose keys come from
    # rows the evaluation read in its transaction: the run (organization and period are its
    # copies), a patient of the chunk, a measure of the catalogue. Nothing in CareHub deletes
    # any of them, and deletes through Django are refused (PROTECT). On the first evaluation
    # of 100,000 patients, organization and run cost about 6 s; patient and measure took the
    # commits from 2.9 to 15.9 s.
    organization = models.ForeignKey(
        "patients.Organization",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        related_name="measure_results",
        db_index=False,
        db_constraint=False,
    )
    # Read by organization and period first (result_chunk) or by patient.
    measure = models.ForeignKey(
        Measure,
        on_delete=models.PROTECT,
        related_name="results",
        db_index=False,
        db_constraint=False,
    )
    period_start = models.DateField()
    period_end = models.DateField()
    ip = models.BooleanField(default=False)
    denom = models.BooleanField(default=False)
    denex = models.BooleanField(default=False)
    numer = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    gap_status = models.CharField(max_length=16, choices=GapStatus.choices)
    # [{"criterion", "resource": "Type/id", "date"}]: what decided the populations.
    evidence = models.JSONField(default=list, blank=True)
    evaluation_run = models.ForeignKey(
        EvaluationRun,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # nothing reads results by run
        db_constraint=False,
    )
    evaluated_at = models.DateTimeField(auto_now=True)

    objects = MeasureResultQuerySet.as_manager()

    class Meta:
        ordering = ["patient_id", "measure_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "measure", "period_start", "period_end"],
                name="measure_result_once",
            )
        ]
        indexes = [
            # An evaluation reads and syncs a chunk's results by organization, period and a
            # range of patient ids: with the patient before the measure that range is one
            # stretch of the index, whatever the planner knows. Led by the measure, the first
            # evaluation of a 1,000,000-patient organization read every result stored so far
            # for each chunk (the table has no statistics while it fills from empty): 64 s of
            # a 529 s profiled run went to reading what was stored, 88 s to the sync's check.
            models.Index(
                fields=["organization", "period_start", "patient", "measure"],
                name="result_chunk",
            )
        ]

    def __str__(self) -> str:
        return f"Result #{self.pk}"


from gaps.care_gaps import (  # noqa: E402,F401
    CareGap,
    GapEvidence,
    GapListImport,
    GapSource,
    GapState,
    NextStep,
    NotAGapReason,
    SourceKind,
)
