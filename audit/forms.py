"""Filters auditors fill in (GET forms: a filtered page is a link that can be shared)."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from audit import timeline


def day_start(day: dt.date | None) -> dt.datetime | None:
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class DateRangeForm(forms.Form):
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False,
        label="To",
        help_text="Inclusive.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return data

    def instants(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """[start, end) in aware datetimes; the end day counts whole."""
        end = self.cleaned_data.get("end")
        return (
            day_start(self.cleaned_data.get("start")),
            day_start(end + dt.timedelta(days=1)) if end else None,
        )


class TimelineFilterForm(DateRangeForm):
    kind = forms.ChoiceField(
        required=False,
        choices=[("", "Changes and reads"), (timeline.CHANGE, "Changes"), (timeline.READ, "Reads")],
    )
    record = forms.ChoiceField(required=False, label="Record type")
    actor = forms.CharField(required=False, label="Actor (username)", max_length=150)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["record"].choices = [("", "Every record type")] + [
            (model._meta.label_lower, model._meta.verbose_name.capitalize())
            for model in timeline.patient_models()
        ]

    def kinds(self) -> tuple[str, ...]:
        kind = self.cleaned_data.get("kind")
        return (kind,) if kind else timeline.KINDS
