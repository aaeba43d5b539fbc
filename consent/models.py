"""Consents, contact preferences and the record of every blocked send.

One `Consent` row per patient and kind (per named proxy for proxy authorizations) holds the
current state; granting and revoking update it through consent.services, so every earlier state
stays in its history with who, when, how and through which path. One `ContactPreference` row per
patient, created on first change; a patient without one has the defaults.
"""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class Channel(models.TextChoices):
    PORTAL = "portal", "Portal message"
    SMS = "sms", "Text message (SMS)"
    EMAIL = "email", "E-mail"
    VOICE = "voice", "Automated voice call"
    PHONE = "phone", "Phone call by an agent"
    LETTER = "letter", "Letter"


class ContentClass(models.TextChoices):
    CLINICAL = "clinical", "Clinical (names a condition, test, result or medication)"
    GENERAL = "general", "General (no clinical detail)"


class ChangePath(models.TextChoices):
    """Through which path a consent or preference change arrived."""

    ADMIN = "admin", "Staff in admin"
    API = "api", "API"
    SELF_SERVICE = "self_service", "Self-service link"
    INBOUND_SMS = "inbound_sms", "Inbound text message"
    IMPORT = "import", "Import"
    SYSTEM = "system", "System"


PATIENT_PATHS = frozenset({ChangePath.SELF_SERVICE, ChangePath.INBOUND_SMS})


class Consent(models.Model):
    class Kind(models.TextChoices):
        SMS_TCPA = "sms_tcpa", "Automated texts and calls (TCPA)"
        EMAIL = "email", "E-mail communications"
        PORTAL = "portal", "Patient portal enrollment"
        PROXY_AUTHORIZATION = "proxy_authorization", "HIPAA authorization for a caregiver/proxy"

    class Status(models.TextChoices):
        GRANTED = "granted", "Granted"
        REVOKED = "revoked", "Revoked"

    class Method(models.TextChoices):
        VERBAL_RECORDED_CALL = "verbal_recorded_call", "Verbal, on a recorded call"
        WRITTEN_FORM = "written_form", "Written form"
        PORTAL = "portal", "Patient portal"
        ONLINE_FORM = "online_form", "Self-service link"
        SMS_KEYWORD = "sms_keyword", "Text message keyword"
        IMPORTED = "imported", "Imported"

    class CapturedBy(models.TextChoices):
        STAFF = "staff", "Staff user"
        PATIENT_SELF_SERVICE = "patient_self_service", "Patient self-service"
        INBOUND_MESSAGE = "inbound_message", "Inbound message"
        SYSTEM = "system", "System"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="consents"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    # Only for proxy authorizations: the caregiver the patient named; "" for every other kind.
    proxy_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices)
    method = models.CharField(max_length=24, choices=Method.choices)
    captured_by = models.CharField(max_length=24, choices=CapturedBy.choices)
    path = models.CharField(max_length=16, choices=ChangePath.choices)
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    evidence = models.CharField(
        max_length=300, blank=True, help_text="Call recording id, form reference, message id"
    )
    changed_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["patient_id", "kind", "proxy_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "kind", "proxy_name"], name="consent_once_per_kind"
            ),
        ]
        indexes = [models.Index(fields=["organization", "kind", "status"])]

    def __str__(self) -> str:
        return f"Consent #{self.pk} ({self.kind}, {self.status})"

    def in_force(self, at) -> bool:
        return (
            self.status == self.Status.GRANTED
            and self.effective_at <= at
            and (self.expires_at is None or at < self.expires_at)
        )


class ContactPreference(models.Model):
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.PROTECT, related_name="contact_preference"
    )
    # Channel codes, most preferred first; empty means no stated order.
    preferred_channels = models.JSONField(default=list, blank=True)
    opted_out_channels = models.JSONField(default=list, blank=True)
    portal_only = models.BooleanField(default=False)
    do_not_contact = models.BooleanField(default=False)
    preferred_language = models.CharField(max_length=16, blank=True)
    # Weekdays the patient accepts contact on (0 = Monday); empty means any day.
    contact_days = models.JSONField(default=list, blank=True)
    contact_start = models.TimeField(null=True, blank=True)
    contact_end = models.TimeField(null=True, blank=True)
    # IANA zone; "" means the patient's own time zone.
    timezone = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=16, choices=ChangePath.choices)
    changed_at = models.DateTimeField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["patient_id"]

    def __str__(self) -> str:
        return f"Contact preferences #{self.pk}"


class BlockedSend(models.Model):
    """A send the contact policy refused at send time. Append-only: kept, never dropped."""

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="blocked_sends"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    content_class = models.CharField(max_length=8, choices=ContentClass.choices)
    attempted_at = models.DateTimeField()
    reasons = models.JSONField(default=list)
    # What was being sent, e.g. "outreach.attempt:123"; no message text (it may carry PHI).
    purpose = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-attempted_at", "-id"]
        indexes = [models.Index(fields=["organization", "-attempted_at"])]

    def __str__(self) -> str:
        return f"Blocked send #{self.pk}"


class InboundSms(models.Model):
    """A text message from a patient's number, kept with what CareHub did about it."""

    class Keyword(models.TextChoices):
        STOP = "stop", "Stop"
        START = "start", "Start"
        HELP = "help", "Help"
        OTHER = "other", "Other"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # One row per matched patient; a number no patient has is kept with no patient.
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inbound_sms",
    )
    from_number = models.CharField(max_length=32)
    body = models.CharField(max_length=1600)
    keyword = models.CharField(max_length=8, choices=Keyword.choices)
    received_at = models.DateTimeField()
    reply = models.CharField(max_length=320, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "inbound text"
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["organization", "-received_at"])]

    def __str__(self) -> str:
        return f"Inbound SMS #{self.pk}"


class SelfServiceLink(models.Model):
    """A signed, expiring link that lets one patient change their own preferences."""

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="self_service_links"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Self-service link #{self.pk}"
