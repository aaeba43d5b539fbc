from django.conf import settings
from django.db import models


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
