"""Care gaps as agents work them: the operational lifecycle of domain.md 2.3.

A `CareGap` is one patient, measure and period. Its reporting status comes from the engine's
latest `MeasureResult`; its `state` is the closure workflow, changed only by gaps.workflow. Every
source that reported the gap (the engine, a payer list, an EHR list, an agent) is a `GapSource`.
`GapEvidence` is what a closure or a not-a-gap rests on, with an optional file. A `GapListImport`
records one CSV gap list: who, when, source, file hash, counts and every bad row.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords


class GapState(models.TextChoices):
    IDENTIFIED = "identified", "Identified"
    IN_REVIEW = "in_review", "In records review"
    VALIDATED = "validated", "Validated"
    NOT_A_GAP = "not_a_gap", "Not a gap"
    OUTREACH = "outreach", "Outreach"
    SCHEDULED = "scheduled", "Scheduled"
    COMPLETED = "completed", "Completed (awaiting documentation)"
    CLOSED = "closed", "Closed"
    NEEDS_REVIEW = "needs_review", "Needs review (coordinator)"
    DECLINED = "declined", "Declined"
    UNREACHABLE = "unreachable", "Unreachable"


# States in which somebody still has to act: each keeps a next step and its due date.
OPEN_STATES = frozenset(
    {
        GapState.IDENTIFIED,
        GapState.IN_REVIEW,
        GapState.VALIDATED,
        GapState.OUTREACH,
        GapState.SCHEDULED,
        GapState.COMPLETED,
        GapState.NEEDS_REVIEW,
    }
)


# A completed service waits this long for its documentation before a coordinator follows up.
DOCUMENTATION_DAYS = 14


class NextStep(models.TextChoices):
    REVIEW_RECORDS = "review_records", "Review the records"
    FIRST_OUTREACH = "first_outreach", "First contact attempt"
    NEXT_ATTEMPT = "next_attempt", "Next contact attempt"
    ATTEND_VISIT = "attend_visit", "Scheduled visit"
    OBTAIN_DOCUMENTATION = "obtain_documentation", "Obtain the result / documentation"
    RECORDS_REQUEST = "records_request", "Records request"
    COORDINATOR_REVIEW = "coordinator_review", "Coordinator review"
    COORDINATION_FOLLOW_UP = "coordination_follow_up", "Coordination follow-up (no documentation)"


class NotAGapReason(models.TextChoices):
    DONE_ELSEWHERE = "done_elsewhere", "Done elsewhere"
    EXCLUDED = "excluded", "Excluded from the measure"
    DATA_ERROR = "data_error", "Data error"


class SourceKind(models.TextChoices):
    ENGINE = "engine", "Gap engine"
    PAYER_LIST = "payer_list", "Payer gap list"
    EHR_LIST = "ehr_list", "EHR / quality tool list"
    MANUAL = "manual", "Entered by staff"


# An ended period's gap whose service fell inside the period can still close on documentation.
_STILL_CLOSABLE = Q(state=GapState.COMPLETED, completed_on__lte=F("period_end")) | Q(
    state=GapState.SCHEDULED, scheduled_for__lte=F("period_end")
)


class CareGapQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state__in=OPEN_STATES)

    def due_before(self, day):
        return self.filter(next_step_due__lt=day)

    def working(self, today):
        """Open gaps that can still close: their period runs, or their service happened (or was
        booked) inside it and only the documentation is missing."""
        return self.filter(state__in=OPEN_STATES).filter(_STILL_CLOSABLE | Q(period_end__gte=today))

    def period_ended(self, today):
        """Open gaps of an ended period that can no longer close: they leave the working lists."""
        return self.filter(state__in=OPEN_STATES, period_end__lt=today).exclude(_STILL_CLOSABLE)


class CareGap(models.Model):
    # Every index is written on each gap write (5,000,000 gaps): organization and patient are
    # served by the wider indexes that lead with them. The engine's result for a gap is found by
    # patient, measure and period (gaps.selectors.engine_results), not stored on the gap:
    # results are rewritten in place, so a stored pointer only repeated that key, and filling it
    # cost the first evaluation an update and a history row per gap.
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="gaps", db_index=False
    )
    # The CMS code identifies the gap; `measure` is the version that applies to the period.
    measure_code = models.CharField(max_length=16)
    measure = models.ForeignKey("gaps.Measure", on_delete=models.PROTECT, related_name="gaps")
    period_start = models.DateField()
    period_end = models.DateField()
    primary_source = models.CharField(max_length=16, choices=SourceKind.choices)
    state = models.CharField(max_length=16, choices=GapState.choices, default=GapState.IDENTIFIED)
    state_changed_at = models.DateTimeField()
    next_step = models.CharField(max_length=24, choices=NextStep.choices, blank=True)
    next_step_due = models.DateField(null=True, blank=True)
    due_date = models.DateField(
        help_text="When the service is due (the list's date or the period end)."
    )
    missing = models.CharField(
        max_length=200, blank=True, help_text="What is missing, as reported."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    measure_weight = models.PositiveSmallIntegerField(default=1)
    not_a_gap_reason = models.CharField(max_length=16, choices=NotAGapReason.choices, blank=True)
    scheduled_for = models.DateField(null=True, blank=True)
    completed_on = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by_engine = models.BooleanField(default=False)
    # The 14-day rule: completed, still no documentation → a coordination follow-up.
    needs_coordination = models.BooleanField(default=False)
    coordination_due = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    objects = CareGapQuerySet.as_manager()

    class Meta:
        ordering = ["next_step_due", "id"]
        permissions = [("review_caregap", "Can decide on gaps flagged for review")]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "measure_code", "period_start", "period_end"],
                name="care_gap_once_per_period",
            ),
            models.CheckConstraint(
                condition=~models.Q(state__in=sorted(OPEN_STATES))
                | (models.Q(next_step_due__isnull=False) & ~models.Q(next_step="")),
                name="open_gap_has_next_step",
            ),
        ]
        indexes = [
            # The worklist order (next step due, then the heavier measure) inside each filter the
            # changelist offers, so a page is an ordered index read that stops at the page size;
            # without measure_weight, the gaps due on one day (tens of thousands in a large
            # client) were sorted on every page (0.44 s at 5,000,000 gaps).
            models.Index(
                fields=["organization", "next_step_due", "-measure_weight", "id"],
                name="gap_org_due_weight",
            ),
            models.Index(
                fields=["organization", "state", "next_step_due", "-measure_weight", "id"],
                name="gap_org_state_due_weight",
            ),
            models.Index(
                fields=["organization", "measure_code", "next_step_due", "-measure_weight", "id"],
                name="gap_org_measure_due_weight",
            ),
            models.Index(
                fields=["state", "completed_on"],
                name="gap_completed_waiting",
                condition=models.Q(state="completed", needs_coordination=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Care gap #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class GapSource(models.Model):
    """One report of the gap: by the engine, a list (which import, which line) or staff."""

    gap = models.ForeignKey(
        CareGap, on_delete=models.PROTECT, related_name="sources", db_index=False
    )  # gap_source_once leads with it
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    name = models.CharField(max_length=100, help_text="e.g. 'Blue Horizon MA' or 'engine'")
    list_import = models.ForeignKey(
        "gaps.GapListImport", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    line = models.PositiveIntegerField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    missing = models.CharField(max_length=200, blank=True)
    last_service_date = models.DateField(null=True, blank=True)
    reported_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["reported_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["gap", "kind", "name"], name="gap_source_once"),
        ]
        indexes = [models.Index(fields=["kind", "gap"], name="gap_source_kind")]

    def __str__(self) -> str:
        return f"Gap source #{self.pk}"


def evidence_upload_path(evidence: "GapEvidence", filename: str) -> str:
    # Never the client's file name: it may carry PHI, and a guessable path helps nobody.
    import uuid

    return f"evidence/{evidence.organization_id}/{uuid.uuid4().hex}"


class GapEvidence(models.Model):
    class Kind(models.TextChoices):
        LAB_RESULT = "lab_result", "Lab result"
        VISIT_NOTE = "visit_note", "Visit note"
        CLAIM = "claim", "Claim"
        OUTSIDE_RECORD = "outside_record", "Outside record"
        SCREENING_CONFIRMATION = "screening_confirmation", "Screening confirmation"
        ENGINE_RESOURCE = "engine_resource", "Clinical record found by the engine"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    gap = models.ForeignKey(CareGap, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    service_date = models.DateField(null=True, blank=True)
    reference = models.CharField(
        max_length=300, blank=True, help_text="Accession number, claim id, document id, resource"
    )
    attachment = models.FileField(upload_to=evidence_upload_path, blank=True, max_length=200)
    attachment_type = models.CharField(max_length=64, blank=True)
    attachment_size = models.PositiveIntegerField(null=True, blank=True)
    attachment_sha256 = models.CharField(max_length=64, blank=True)
    # The result value a closure rests on where the measure is one (CMS165 blood pressure,
    # CMS122 HbA1c); checked against the measure's threshold by gaps.workflow.check_result.
    systolic_bp = models.PositiveSmallIntegerField("systolic (mmHg)", null=True, blank=True)
    diastolic_bp = models.PositiveSmallIntegerField("diastolic (mmHg)", null=True, blank=True)
    hba1c_percent = models.DecimalField(
        "HbA1c (%)", max_digits=4, decimal_places=1, null=True, blank=True
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    added_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["-added_at", "-id"]

    def __str__(self) -> str:
        return f"Evidence #{self.pk}"


class GapListImport(models.Model):
    class Status(models.TextChoices):
        PREVIEWED = "previewed", "Previewed, not applied"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected (all-or-nothing, bad rows)"
        DUPLICATE = "duplicate", "Same file as an earlier import; nothing changed"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    source_name = models.CharField(max_length=100)
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    file_name = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64)
    content = models.BinaryField(help_text="The file as received, kept until it is applied")
    all_or_nothing = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    counts = models.JSONField(default=dict)
    # [{"line": 7, "reason": "unknown MRN 'X123'"}]: every row that was not imported.
    problems = models.JSONField(default=list)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["content"])

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["organization", "file_sha256"], name="gap_list_hash")]

    def __str__(self) -> str:
        return f"Gap list import #{self.pk}"
