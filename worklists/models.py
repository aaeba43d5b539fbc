"""Worklists (domain.md 5): queues, teams, work items and the patients' risk tiers.

- `Queue`: one organization's pile of work of some kinds, worked by one role. Who may take work
  from it is a django-guardian object permission (`worklists.work_queue`) given through team
  membership (`worklists.services.add_team_member`); supervisors see every queue of their
  organizations.
- `Team`: users who work the same queues.
- `WorkItem`: one thing a person has to do about one patient (and, when it is about one, a gap,
  an appointment, an attempt or an outreach follow-up). It is opened and closed by the services
  that cause it (gap transitions, outreach events, the 14-day rule), sits unassigned in its queue
  or has an owner, and carries its priority (risk rank, due date, measure weight) so that get-next
  reads one index in priority order.
- `PatientRisk`: the nightly risk tier of a patient with the facts that decided it. Derived data
  (recomputed from the clinical records, gaps and work items each night, like the engine's
  MeasureResult), so no history of its own; a tier change that reorders open work is written to
  the work items, which keep history.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from carehub.roles import AGENT, COORDINATOR, SUPERVISOR


class ItemKind(models.TextChoices):
    REVIEW_GAP = "review_gap", "Review a gap"
    OUTREACH_CALL = "outreach_call", "Outreach call"
    SCHEDULE = "schedule", "Schedule the visit"
    CONFIRM_COMPLETION = "confirm_completion", "Confirm completion"
    CONFIRM_CLOSURE = "confirm_closure", "Confirm closure (documentation)"
    CALL_BACK = "call_back", "Call back"
    NO_SHOW_RECOVERY = "no_show_recovery", "Recover a no-show"
    POST_PROCEDURE = "post_procedure", "Post-procedure check-in"
    COORDINATOR_REVIEW = "coordinator_review", "Coordinator review / escalation"


class RiskTier(models.TextChoices):
    HIGH = "high", "High"
    RISING = "rising", "Rising"
    LOW = "low", "Low"


# Sort key of a tier: high risk is worked first.
RISK_RANK = {RiskTier.HIGH: 0, RiskTier.RISING: 1, RiskTier.LOW: 2}
TIER_OF_RANK = {rank: tier for tier, rank in RISK_RANK.items()}
# A patient never assessed is worked like a low-risk one, not ahead of the assessed.
UNASSESSED_RANK = RISK_RANK[RiskTier.LOW]


class Team(models.Model):
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    history = HistoricalRecords(m2m_fields=[members])

    class Meta:
        ordering = ["organization_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="team_name_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class Queue(models.Model):
    ROLE_CHOICES = [(AGENT, AGENT), (COORDINATOR, COORDINATOR), (SUPERVISOR, SUPERVISOR)]

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=32, choices=ROLE_CHOICES)
    # The item kinds routed here (ItemKind values); each kind is in one queue per organization.
    kinds = models.JSONField(default=list)
    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, null=True, blank=True, related_name="queues"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization_id", "name"]
        permissions = [("work_queue", "Can take work from the queue")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="queue_name_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class WorkItemQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state=WorkItem.State.OPEN)

    def unassigned(self):
        return self.filter(owner__isnull=True)

    def by_priority(self):
        """Risk tier, then due date, then measure weight (heaviest first); never alphabetical."""
        return self.order_by("risk_rank", "due_date", "-measure_weight", "id")


class WorkItem(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Assignment(models.TextChoices):
        NONE = "", "Unassigned"
        CLAIMED = "claimed", "Claimed (get next)"
        ASSIGNED = "assigned", "Assigned by a supervisor"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(max_length=24, choices=ItemKind.choices)
    # What the item is about: always a patient; a gap, or an outreach record, when there is one.
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="work_items"
    )
    gap = models.ForeignKey(
        "gaps.CareGap", on_delete=models.PROTECT, null=True, blank=True, related_name="work_items"
    )
    # Outreach records by id (outreach depends on nothing here; these become foreign keys
    # once outreach's tables are part of every install).
    appointment_ref = models.BigIntegerField(null=True, blank=True)
    attempt_ref = models.BigIntegerField(null=True, blank=True)
    follow_up_ref = models.BigIntegerField(null=True, blank=True)

    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    reason = models.CharField(max_length=300, help_text="Why the item exists (shown to its owner)")
    resolution = models.CharField(max_length=300, blank=True)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    assignment = models.CharField(
        max_length=10, choices=Assignment.choices, blank=True, default=Assignment.NONE
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    # Priority, copied from the patient's tier and the measure so get-next reads one index.
    risk_rank = models.PositiveSmallIntegerField(default=UNASSESSED_RANK)
    due_date = models.DateField()
    measure_weight = models.PositiveSmallIntegerField(default=1)
    not_before = models.DateField(
        null=True, blank=True, help_text="Not handed out before this day (a visit still ahead)."
    )
    sla_due_at = models.DateTimeField(help_text="When the item breaches its service level.")

    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords()

    objects = WorkItemQuerySet.as_manager()

    class Meta:
        ordering = ["risk_rank", "due_date", "-measure_weight", "id"]
        permissions = [("assign_workitem", "Can assign and reassign work items")]
        constraints = [
            # One open item of a kind per gap: a retried event finds the item it made.
            models.UniqueConstraint(
                fields=["gap", "kind"],
                condition=Q(state="open") & Q(gap__isnull=False),
                name="workitem_open_once_per_gap_kind",
            ),
            models.CheckConstraint(
                condition=Q(owner__isnull=True, assignment="")
                | (Q(owner__isnull=False) & ~Q(assignment="")),
                name="workitem_owner_has_assignment",
            ),
        ]
        indexes = [
            # Get-next: unassigned open work in priority order, read from the top.
            models.Index(
                "risk_rank",
                "due_date",
                models.F("measure_weight").desc(),
                "id",
                name="workitem_next",
                condition=Q(state="open", owner__isnull=True),
            ),
            models.Index(fields=["owner", "state", "due_date"], name="workitem_owner"),
            models.Index(fields=["patient", "state"], name="workitem_patient"),
            models.Index(fields=["queue", "state", "created_at"], name="workitem_queue_age"),
            models.Index(
                fields=["last_activity_at"],
                name="workitem_claimed_idle",
                condition=Q(state="open", assignment="claimed"),
            ),
        ]

    def __str__(self) -> str:
        return f"Work item #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    @property
    def risk_tier(self) -> str:
        return TIER_OF_RANK.get(self.risk_rank, RiskTier.LOW)


class PatientRisk(models.Model):
    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.PROTECT, primary_key=True, related_name="risk"
    )
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    tier = models.CharField(max_length=8, choices=RiskTier.choices)
    score = models.PositiveSmallIntegerField()
    chronic_conditions = models.PositiveSmallIntegerField(default=0)
    open_gaps = models.PositiveSmallIntegerField(default=0)
    acute_visits = models.PositiveSmallIntegerField(
        default=0, help_text="ED visits and inpatient admissions in the last 12 months"
    )
    no_shows = models.PositiveSmallIntegerField(
        default=0, help_text="Missed appointments in the last 12 months"
    )
    last_visit_on = models.DateField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "tier"], name="risk_org_tier")]

    def __str__(self) -> str:
        return f"Risk of patient #{self.patient_id}"
