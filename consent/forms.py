"""Forms for the self-service page and the staff screens; they parse input, services decide."""

from __future__ import annotations

from zoneinfo import available_timezones

from django import forms

from consent.models import Channel, Consent, ContactPreference

WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]
LANGUAGES = [
    ("", "No preference"),
    ("en", "English"),
    ("es", "Español"),
    ("zh", "中文"),
    ("vi", "Tiếng Việt"),
    ("ko", "한국어"),
    ("ru", "Русский"),
    ("ar", "العربية"),
    ("ht", "Kreyòl ayisyen"),
    ("pt", "Português"),
    ("tl", "Tagalog"),
    ("fr", "Français"),
]
CHANNEL_CHOICES = [(c.value, c.label) for c in Channel]


def _timezones() -> list[tuple[str, str]]:
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))
    return [("", "The patient's own time zone"), *((z, z) for z in zones)]


class PreferenceFieldsMixin(forms.Form):
    """The preference fields staff and patients share, and their conversion to service kwargs."""

    opted_out_channels = forms.MultipleChoiceField(
        choices=CHANNEL_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Opted out of",
    )
    portal_only = forms.BooleanField(required=False, label="Portal only")
    do_not_contact = forms.BooleanField(required=False, label="Do not contact")
    preferred_channel = forms.ChoiceField(
        choices=[("", "No preference"), *CHANNEL_CHOICES],
        required=False,
        label="Preferred channel",
    )
    preferred_language = forms.ChoiceField(choices=LANGUAGES, required=False)
    contact_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Days we may contact",
        help_text="None ticked: any day.",
    )
    contact_start = forms.TimeField(
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        label="From",
    )
    contact_end = forms.TimeField(
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        label="Until",
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("contact_start"), cleaned.get("contact_end")
        if (start is None) != (end is None):
            raise forms.ValidationError("Give both the start and the end of the hours, or neither.")
        if start is not None and end is not None and start >= end:
            raise forms.ValidationError("The hours must start before they end.")
        return cleaned

    @staticmethod
    def initial_from(preference: ContactPreference | None) -> dict:
        if preference is None:
            return {}
        return {
            "opted_out_channels": preference.opted_out_channels,
            "portal_only": preference.portal_only,
            "do_not_contact": preference.do_not_contact,
            "preferred_channel": (preference.preferred_channels or [""])[0],
            "preferred_language": preference.preferred_language,
            "contact_days": preference.contact_days,
            "contact_start": preference.contact_start,
            "contact_end": preference.contact_end,
        }

    def preference_changes(self, current: ContactPreference | None) -> dict:
        data = self.cleaned_data
        first = data["preferred_channel"]
        # The form edits the first choice; the rest of a stored order stays behind it.
        rest = [c for c in (current.preferred_channels if current else []) if c != first]
        return {
            "opted_out_channels": sorted(data["opted_out_channels"]),
            "portal_only": data["portal_only"],
            "do_not_contact": data["do_not_contact"],
            "preferred_channels": [first, *rest] if first else rest,
            "preferred_language": data["preferred_language"],
            "contact_days": sorted(data["contact_days"]),
            "contact_start": data["contact_start"],
            "contact_end": data["contact_end"],
        }


class SelfServiceForm(PreferenceFieldsMixin):
    sms_consent = forms.BooleanField(
        required=False, label="I agree to receive automated text messages and calls"
    )
    email_consent = forms.BooleanField(required=False, label="I agree to receive e-mail")

    def consent_choices(self) -> dict[str, bool]:
        return {
            Consent.Kind.SMS_TCPA: self.cleaned_data["sms_consent"],
            Consent.Kind.EMAIL: self.cleaned_data["email_consent"],
        }


class StaffPreferenceForm(PreferenceFieldsMixin):
    timezone = forms.ChoiceField(choices=_timezones, required=False, label="Time zone")
    reason = forms.CharField(
        max_length=200,
        help_text="Why is this being changed? E.g. “patient asked by phone to stop texts”.",
    )

    @staticmethod
    def initial_from(preference: ContactPreference | None) -> dict:
        initial = PreferenceFieldsMixin.initial_from(preference)
        if preference is not None:
            initial["timezone"] = preference.timezone
        return initial

    def preference_changes(self, current: ContactPreference | None) -> dict:
        return {**super().preference_changes(current), "timezone": self.cleaned_data["timezone"]}


STAFF_METHODS = [
    (m.value, m.label)
    for m in Consent.Method
    if m not in (Consent.Method.SMS_KEYWORD, Consent.Method.ONLINE_FORM)
]


class ConsentForm(forms.Form):
    GRANT, REVOKE = "grant", "revoke"

    kind = forms.ChoiceField(choices=Consent.Kind.choices, label="Consent")
    action = forms.ChoiceField(choices=[(GRANT, "Granted"), (REVOKE, "Revoked")])
    method = forms.ChoiceField(
        choices=[("", "— choose how it was given —"), *STAFF_METHODS],
        help_text="How the patient gave or withdrew it.",
    )
    evidence = forms.CharField(
        max_length=300,
        required=False,
        help_text="Call recording id, form reference or document id. Required for TCPA consent.",
    )
    proxy_name = forms.CharField(
        max_length=200,
        required=False,
        label="Proxy / caregiver name",
        help_text="Only for a HIPAA proxy authorization.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    reason = forms.CharField(max_length=200)

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("kind") == Consent.Kind.SMS_TCPA
            and cleaned.get("action") == self.GRANT
            and not (cleaned.get("evidence") or "").strip()
        ):
            self.add_error("evidence", "TCPA consent cannot be recorded without its evidence.")
        return cleaned
