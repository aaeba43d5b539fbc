"""Daily snapshot tables: small, pre-aggregated counts the dashboard reads instead of the
operational tables (5,000,000 gaps, 20,000,000 attempts).

Two kinds of day rows:
- "standing" counts as the nightly run found them (gap states, open work by age, quality):
  only taken for the day of the run;
- "event" counts of what happened that day (transitions, attempts, appointments, follow-ups):
  recomputable for any past day from history, so a missed night is filled in later.
Derived data: no history of their own (their provenance is the operational history); a day is
recomputed by replacing its rows.
"""

from django.conf import settings
from django.db import models

USER = settings.AUTH_USER_MODEL


class DayRow(models.Model):
    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.day} #{self.pk}"


def _org():
    return models.ForeignKey("patients.Organization", on_delete=models.PROTECT, related_name="+")


def _user(**kwargs):
    return models.ForeignKey(
        USER, on_delete=models.PROTECT, null=True, blank=True, related_name="+", **kwargs
    )


class GapStateDay(DayRow):
    """Gaps per state as they stood on `day`, by organization, measure, period year, owner."""

    day = models.DateField()
    organization = _org()
    measure_code = models.CharField(max_length=16)
    period_year = models.PositiveSmallIntegerField()
    owner = _user()
    state = models.CharField(max_length=16)
    gaps = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_state_org_day")]


class TransitionCounts(DayRow):
    """Gap workflow transitions made on `day` (from the gaps' history), by who made them.
    `from_state` is "" for a gap created that day."""

    day = models.DateField()
    organization = _org()
    measure_code = models.CharField(max_length=16)
    actor = _user()
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    gaps = models.PositiveIntegerField()

    class Meta:
        abstract = True


class AttemptCounts(DayRow):
    """Outreach attempts made on `day` (attempted_at), by agent or automation, channel, step
    and outcome. `active_hours` (only on the agent's rows of outcome "") counts the distinct
    clock hours in which the agent logged at least one attempt: the productivity denominator."""

    day = models.DateField()
    organization = _org()
    actor = _user()
    automated = models.BooleanField()
    channel = models.CharField(max_length=8)
    step = models.CharField(max_length=20)
    outcome = models.CharField(max_length=20)
    attempts = models.PositiveIntegerField()
    active_hours = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class AppointmentCounts(DayRow):
    """Appointments that were due on `day` (starts_at), by their status now."""

    day = models.DateField()
    organization = _org()
    booked_by = _user()
    status = models.CharField(max_length=10)
    appointments = models.PositiveIntegerField()

    class Meta:
        abstract = True


class FollowUpCounts(DayRow):
    """Follow-up tasks due on `day`: how many, how many done by their due time, and a histogram
    of the response times (received -> done) of those done that day, in 5-minute steps
    ({"steps": count}), so percentiles over any period add up without keeping every task."""

    day = models.DateField()
    organization = _org()
    kind = models.CharField(max_length=20)
    done_by = _user()
    due = models.PositiveIntegerField(default=0)
    done_on_time = models.PositiveIntegerField(default=0)
    lag_histogram = models.JSONField(default=dict)

    class Meta:
        abstract = True


class TransitionDay(TransitionCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_trans_org_day")]


class AttemptDay(AttemptCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_att_org_day")]


class AppointmentDay(AppointmentCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_appt_org_day")]


class FollowUpDay(FollowUpCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_fu_org_day")]


# The same counts summed per month (`day` is the month's first day), rewritten each night for
# the month of the day just counted: the dashboard's period is whole months, so it reads a
# twelfth of a year's rows in the event tables.


class TransitionMonth(TransitionCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_trans_org_month")]


class AttemptMonth(AttemptCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_att_org_month")]


class AppointmentMonth(AppointmentCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_appt_org_month")]


class FollowUpMonth(FollowUpCounts):
    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_fu_org_month")]


class WorkAgingDay(DayRow):
    """Open work items on `day` by age bucket (0-2, 3-7, 8-14, 15-30, 30+ days)."""

    day = models.DateField()
    organization = _org()
    team_id_ref = models.BigIntegerField(null=True, blank=True)
    owner = _user()
    kind = models.CharField(max_length=24)
    bucket = models.CharField(max_length=8)
    items = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_aging_org_day")]


class QualityDay(DayRow):
    """Quality measure performance on `day` from the engine's latest results: denominator
    (in the denominator, not excluded), numerator, and the open gaps scheduled right now."""

    day = models.DateField()
    organization = _org()
    measure_code = models.CharField(max_length=16)
    period_year = models.PositiveSmallIntegerField()
    inverse = models.BooleanField(default=False)
    denominator = models.PositiveIntegerField()
    numerator = models.PositiveIntegerField()
    scheduled = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["organization", "day"], name="metrics_quality_org_day")]


class SnapshotRun(DayRow):
    """One nightly run: when, which day, how long, and what it wrote."""

    day = models.DateField()
    started_at = models.DateTimeField()
    seconds = models.FloatField()
    rows = models.JSONField(default=dict)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"


class Dashboard(models.Model):
    """No table: the admin entry (and `view_dashboard` permission) of the supervisor dashboard."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "supervisor dashboard"
        verbose_name_plural = "supervisor dashboard"

    def __str__(self) -> str:
        return "Supervisor dashboard"
