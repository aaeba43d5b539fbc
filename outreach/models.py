"""Outreach records (domain.md 4): templates, attempts, appointments, follow-ups, the waitlist.

- `MessageTemplate`: what automated contact says, per purpose, channel and language. A general
  template never names a measure, condition, test, result or medication (checked at save by
  outreach.templating, which names the offending words).
- `OutreachAttempt`: one contact (or one planned contact) with one patient, unique per patient,
  step and window, so a retried task finds the row it already made instead of a second contact.
  It keeps every field of domain.md 4 and its state in the outbox (see outreach.services.outbox).
- `OutboundMessage`: what a channel backend handed over (portal message for the portal, SMS,
  e-mail, letter): the store the default backends write to instead of a network.
- `LetterBatch`: a printable PDF of letters, made on request.
- `Appointment`: site, provider, start, the gaps it addresses, status.
- `FollowUp`: a task for a person that outreach raised (call an unconfirmed patient, call back,
  look at an ambiguous send, a clinical concern, a blocked sequence). A later worklists app turns
  these into work items (outreach.events publishes each one).
- `WaitlistEntry`: a patient who wants an earlier slot at a site.
"""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from consent.models import Channel, ContentClass


class Purpose(models.TextChoices):
    GAP_OUTREACH = "gap_outreach", "Care gap outreach"
    APPOINTMENT_REMINDER = "appointment_reminder", "Appointment reminder (48 hours)"
    DAY_OF_CONFIRMATION = "day_of_confirmation", "Day-of confirmation"
    NO_SHOW_RECOVERY = "no_show_recovery", "No-show: rescheduling invitation"
    WAITLIST_OFFER = "waitlist_offer", "Freed slot offered"
    POST_PROCEDURE = "post_procedure", "Post-procedure check-in"
    DORMANT = "dormant", "Re-engagement (no visit in 12 months)"
    SELF_SERVICE_LINK = "self_service_link", "Link to the patient's contact preferences"


class MessageTemplate(models.Model):
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=100)
    purpose = models.CharField(max_length=24, choices=Purpose.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    language = models.CharField(max_length=16, default="en")
    content_class = models.CharField(
        max_length=8, choices=ContentClass.choices, default=ContentClass.GENERAL
    )
    subject = models.CharField(max_length=200, blank=True, help_text="E-mail and portal only")
    body = models.TextField(
        help_text="Fields: {{ patient_first_name }}, {{ practice_name }}, {{ practice_phone }}, "
        "{{ appointment_time }}, {{ site_name }}, {{ provider_name }}, {{ preferences_link }}"
    )
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["organization_id", "purpose", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "purpose", "channel", "language"],
                name="template_once_per_purpose_channel_language",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.channel}, {self.language})"

    def clean(self) -> None:
        # Admin forms call clean(); services call check_template themselves before saving.
        from django.core.exceptions import ValidationError

        from outreach.templating import TemplateRefused, check_template

        try:
            check_template(
                channel=self.channel,
                content_class=self.content_class,
                subject=self.subject,
                body=self.body,
            )
        except TemplateRefused as error:
            raise ValidationError(str(error)) from None


class Step(models.TextChoices):
    """Which contact of which sequence; with the window it makes the attempt's unique key."""

    GAP_FIRST = "gap_first", "Gap outreach: first attempt"
    GAP_SECOND = "gap_second", "Gap outreach: second attempt"
    REMINDER_48H = "reminder_48h", "Appointment reminder (48 h)"
    DAY_OF = "day_of", "Day-of confirmation"
    NO_SHOW_RECOVERY = "no_show_recovery", "No-show recovery"
    WAITLIST_OFFER = "waitlist_offer", "Waitlist offer"
    POST_PROCEDURE = "post_procedure", "Post-procedure check-in"
    DORMANT = "dormant", "Dormant re-engagement"
    SELF_SERVICE_LINK = "self_service_link", "Preferences link"
    AGENT_CALL = "agent_call", "Agent's call"


STEP_PURPOSE = {
    Step.GAP_FIRST: Purpose.GAP_OUTREACH,
    Step.GAP_SECOND: Purpose.GAP_OUTREACH,
    Step.REMINDER_48H: Purpose.APPOINTMENT_REMINDER,
    Step.DAY_OF: Purpose.DAY_OF_CONFIRMATION,
    Step.NO_SHOW_RECOVERY: Purpose.NO_SHOW_RECOVERY,
    Step.WAITLIST_OFFER: Purpose.WAITLIST_OFFER,
    Step.POST_PROCEDURE: Purpose.POST_PROCEDURE,
    Step.DORMANT: Purpose.DORMANT,
    Step.SELF_SERVICE_LINK: Purpose.SELF_SERVICE_LINK,
}


class Outcome(models.TextChoices):
    """The fixed list of domain.md 4."""

    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    NO_ANSWER = "no_answer", "No answer"
    LEFT_VOICEMAIL = "left_voicemail", "Left voicemail"
    REACHED_SCHEDULED = "reached_scheduled", "Reached and scheduled"
    REACHED_DECLINED = "reached_declined", "Reached and declined"
    WRONG_NUMBER = "wrong_number", "Wrong number"
    OPTED_OUT = "opted_out", "Opted out"
    BLOCKED_BY_POLICY = "blocked_by_policy", "Blocked by policy"


CALL_OUTCOMES = [
    (value, label) for value, label in Outcome.choices if value not in ("delivered", "failed")
]


class AttemptStatus(models.TextChoices):
    """Where the attempt is in the outbox (an agent's call is `logged` at once)."""

    PLANNED = "planned", "Planned"
    SENDING = "sending", "Sending (handed to the channel)"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked by policy"
    UNKNOWN = "unknown", "Unknown (a person checks; never resent automatically)"
    CANCELLED = "cancelled", "Cancelled (no longer needed)"
    LOGGED = "logged", "Logged by an agent"


class OutreachAttempt(models.Model):
    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="outreach_attempts"
    )
    step = models.CharField(max_length=20, choices=Step.choices)
    # With patient and step the unique key: the period year of a gap sequence, "appt-<id>" for
    # an appointment's messages, a timestamp for an agent's call.
    window = models.CharField(max_length=40)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    content_class = models.CharField(
        max_length=8, choices=ContentClass.choices, default=ContentClass.GENERAL
    )
    gaps = models.ManyToManyField("gaps.CareGap", blank=True, related_name="outreach_attempts")
    appointment = models.ForeignKey(
        "outreach.Appointment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attempts",
    )
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rendered_subject = models.CharField(max_length=200, blank=True)
    rendered_text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=AttemptStatus.choices)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    blocked_reasons = models.JSONField(default=list, blank=True)
    response = models.TextField(blank=True, help_text="What the patient said or answered")
    next_step = models.CharField(max_length=200, blank=True)
    next_step_due = models.DateField(null=True, blank=True)
    clinical_concern = models.BooleanField(
        default=False, help_text="The patient raised a clinical concern (a coordinator follows up)"
    )
    automated = models.BooleanField(default=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The agent, or the system user for automation",
    )
    planned_at = models.DateTimeField()
    not_before = models.DateTimeField(help_text="Earliest send time (allowed hours)")
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Not sent after this (e.g. a reminder after the visit)"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the contact was made"
    )
    outcome_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=300, blank=True, help_text="No message text here")
    history = HistoricalRecords()

    class Meta:
        ordering = ["-planned_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "step", "window"], name="attempt_once_per_patient_step_window"
            ),
        ]
        indexes = [
            # The outbox: planned attempts by earliest send time; stale sends by claim time.
            models.Index(
                fields=["not_before"],
                name="attempt_outbox_due",
                condition=models.Q(status="planned"),
            ),
            models.Index(
                fields=["claimed_at"],
                name="attempt_sending_since",
                condition=models.Q(status="sending"),
            ),
            models.Index(fields=["patient", "-planned_at"], name="attempt_patient_log"),
            models.Index(fields=["organization", "-planned_at"], name="attempt_org_recent"),
            models.Index(fields=["provider_message_id"], name="attempt_provider_id"),
        ]

    def __str__(self) -> str:
        return f"Outreach attempt #{self.pk}"


class OutboundMessage(models.Model):
    """What a channel backend handed over; the default backends' store (no network)."""

    class Delivery(models.TextChoices):
        ACCEPTED = "accepted", "Accepted by the channel"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        READ = "read", "Read"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    attempt = models.ForeignKey(OutreachAttempt, on_delete=models.PROTECT, related_name="messages")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    to_address = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    provider_message_id = models.CharField(max_length=100, unique=True)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default="accepted")
    created_at = models.DateTimeField()
    letter_batch = models.ForeignKey(
        "outreach.LetterBatch",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="letters",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "channel", "-created_at"], name="message_patient"),
            models.Index(
                fields=["organization", "created_at"],
                name="letter_unbatched",
                condition=models.Q(channel="letter", letter_batch__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Outbound message #{self.pk}"


class LetterBatch(models.Model):
    """Letters printed together (the PDF is kept as made)."""

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    letter_count = models.PositiveIntegerField()
    pdf = models.BinaryField()
    history = HistoricalRecords(excluded_fields=["pdf"])

    class Meta:
        verbose_name_plural = "letter batches"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Letter batch #{self.pk}"


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", "Booked"
    CONFIRMED = "confirmed", "Confirmed"
    COMPLETED = "completed", "Completed"
    NO_SHOW = "no_show", "No-show"
    CANCELLED = "cancelled", "Cancelled"


UPCOMING = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)


class Appointment(models.Model):
    class Kind(models.TextChoices):
        VISIT = "visit", "Visit"
        PROCEDURE = "procedure", "Procedure (check-in 24-72 hours after)"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="appointments"
    )
    site = models.ForeignKey("patients.Site", on_delete=models.PROTECT, related_name="+")
    provider = models.ForeignKey(
        "patients.Provider", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    starts_at = models.DateTimeField()
    duration_minutes = models.PositiveSmallIntegerField(default=30)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VISIT)
    gaps = models.ManyToManyField("gaps.CareGap", blank=True, related_name="appointments")
    status = models.CharField(
        max_length=10, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    booked_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    no_show_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(m2m_fields=["gaps"])

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            models.Index(fields=["organization", "starts_at", "site"], name="appt_org_day_site"),
            models.Index(fields=["patient", "-starts_at"], name="appt_patient"),
            models.Index(
                fields=["starts_at"],
                name="appt_upcoming",
                condition=models.Q(status__in=["booked", "confirmed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Appointment #{self.pk}"


class FollowUp(models.Model):
    """A task for a person that outreach raised; `lag` is measured when it is done."""

    class Kind(models.TextChoices):
        CALL_UNCONFIRMED = "call_unconfirmed", "Call: appointment not confirmed 24 h before"
        CALLBACK = "callback", "Call back (inbound message or voicemail)"
        UNKNOWN_SEND = "unknown_send", "Check a send of unknown outcome"
        CLINICAL_CONCERN = "clinical_concern", "Clinical concern raised (coordinator)"
        NO_SHOW_CALL = "no_show_call", "No-show: call to reschedule"
        OUTREACH_CALL = "outreach_call", "Outreach call (no automated channel allowed)"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="outreach_follow_ups"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    attempt = models.ForeignKey(
        OutreachAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The inbound text or voicemail the callback answers (no text copied here).
    source_reference = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(help_text="When the need arose (message received, …)")
    due_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lag_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="From received to done (callback lag)"
    )
    note = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "follow-up"
        ordering = ["due_at", "id"]
        constraints = [
            # One open task of a kind per attempt / appointment: a rerun of a sweep adds none.
            models.UniqueConstraint(
                fields=["kind", "attempt"],
                name="follow_up_once_per_attempt",
                condition=models.Q(attempt__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["kind", "appointment"],
                name="follow_up_once_per_appointment",
                condition=models.Q(appointment__isnull=False),
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "due_at"],
                name="follow_up_open_due",
                condition=models.Q(done_at__isnull=True),
            ),
            models.Index(fields=["patient", "-received_at"], name="follow_up_patient"),
        ]

    def __str__(self) -> str:
        return f"Follow-up #{self.pk} ({self.kind})"


class WaitlistEntry(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        OFFERED = "offered", "Slot offered"
        BOOKED = "booked", "Booked"
        WITHDRAWN = "withdrawn", "Withdrawn"

    organization = models.ForeignKey(
        "patients.Organization", on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("patients.Site", on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    offered_slot = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "waitlist entries"
        ordering = ["requested_at", "id"]
        indexes = [
            models.Index(
                fields=["site", "requested_at"],
                name="waitlist_waiting",
                condition=models.Q(status="waiting"),
            )
        ]

    def __str__(self) -> str:
        return f"Waitlist entry #{self.pk}"
