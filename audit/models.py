from django.conf import settings
from django.db import models

from carehub.models import User
from patients.models import Patient


class AccessLog(models.Model):
    """One read of PHI: who opened which patients (or list, or export), when and from where.

    Append-only: no admin can change it and, on PostgreSQL, a trigger refuses UPDATE and DELETE.
    """

    class Action(models.TextChoices):
        VIEW = "view", "Opened a record"
        LIST = "list", "Listed records"
        SEARCH = "search", "Searched records"
        HISTORY = "history", "Opened a record's history"
        EXPORT = "export", "Exported records"

    class Channel(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        COMMAND = "command", "Command"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="phi_access"
    )
    # The organization whose records were read, so each client's auditors see their own log.
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+", null=True
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    channel = models.CharField(max_length=12, choices=Channel.choices)
    model = models.CharField(max_length=100, help_text="app_label.model of the records read")
    object_ids = models.JSONField(default=list, help_text="Primary keys of the records shown")
    # The patients behind the records (a gap read is a read of its patient too), so "who saw
    # patient 198" finds reads of every record of that patient. GIN-indexed on PostgreSQL.
    patient_ids = models.JSONField(default=list, help_text="Patients whose records were shown")
    object_count = models.PositiveIntegerField(default=0)
    # The query string can hold a searched name or MRN, which is PHI in itself, but the auditor
    # needs to know what was looked for; it stays inside this protected log only.
    query = models.CharField(max_length=500, blank=True)
    path = models.CharField(max_length=500)
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["user", "-at"], name="accesslog_user_at"),
            models.Index(fields=["model", "-at"], name="accesslog_model_at"),
            models.Index(fields=["organization", "-at"], name="accesslog_org_at"),
        ]

    def __str__(self) -> str:
        return f"Access #{self.pk}"


class HistoryOrigin(models.Model):
    """Through which door a history row written during a web request came: admin, API or the
    patient's self-service page. History rows written outside a request (commands, tasks,
    imports) have none; the timeline tells those apart by their actor and reason.

    simple-history's tables have no such column and belong to every app; one narrow side table
    keyed by (history table, history id) covers all of them, present and future.
    """

    class Channel(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        SELF_SERVICE = "self_service", "Patient self-service"

    at = models.DateTimeField(auto_now_add=True)
    history_table = models.CharField(max_length=100)
    history_id = models.BigIntegerField()
    channel = models.CharField(max_length=16, choices=Channel.choices)

    class Meta:
        indexes = [models.Index(fields=["history_table", "history_id"], name="history_origin_row")]

    def __str__(self) -> str:
        return f"History origin #{self.pk}"


class Seal(models.Model):
    """One link of a table's hash chain: the rows of `table` with ids in (previous seal's
    last id, last_id], each hashed over a canonical serialization, chained with SHA-256 onto
    the previous seal's digest. `row_digests` keeps (id, hash) per row so the verifier can
    name each row changed, removed or inserted since. Append-only like the tables it seals.
    """

    sealed_at = models.DateTimeField(auto_now_add=True)
    table = models.CharField(max_length=100)
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    row_count = models.PositiveIntegerField()
    previous = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="next"
    )
    previous_digest = models.CharField(max_length=64)
    digest = models.CharField(max_length=64)
    # 8-byte big-endian id + 32-byte SHA-256 per row, in id order.
    row_digests = models.BinaryField()

    class Meta:
        ordering = ["table", "last_id"]
        constraints = [
            models.UniqueConstraint(fields=["table", "last_id"], name="seal_once_per_range"),
        ]

    def __str__(self) -> str:
        return f"Seal #{self.pk} ({self.table} {self.first_id}-{self.last_id})"


class PatientTimeline(Patient):
    """Admin entry for auditors: pick a patient, read everything that happened to them."""

    class Meta:
        proxy = True
        verbose_name = "patient timeline"
        verbose_name_plural = "patient timelines"


class UserActivity(User):
    """Admin entry for auditors: pick a user, read everything they changed and saw."""

    class Meta:
        proxy = True
        verbose_name = "user activity"
        verbose_name_plural = "user activity"
