"""The dashboard's filters (a GET form: a filtered dashboard is a link a supervisor can share)."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.apps import apps
from django.utils import timezone

from carehub.selectors import users_for
from gaps.measures import MEASURE_CODES
from metrics.selectors import Filters, dashboard_organizations

MAX_MONTHS = 36


def _month(text: str) -> dt.date:
    try:
        year, month = (int(part) for part in text.split("-"))
        return dt.date(year, month, 1)
    except (ValueError, TypeError) as error:
        raise forms.ValidationError("A month is YYYY-MM, e.g. 2026-03.") from error


class MonthField(forms.CharField):
    widget = forms.TextInput(attrs={"type": "month"})

    def to_python(self, value):
        value = super().to_python(value)
        return _month(value) if value else None


def _last_day(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


class DashboardFilterForm(forms.Form):
    organization = forms.ChoiceField(required=False)
    measure = forms.ChoiceField(required=False)
    team = forms.ChoiceField(required=False)
    agent = forms.ChoiceField(required=False)
    start = MonthField(required=False, label="From month")
    end = MonthField(required=False, label="To month")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.organizations = list(dashboard_organizations(user).order_by("name"))
        org_ids = [o.pk for o in self.organizations]
        self.fields["organization"].choices = [("", "All my organizations")] + [
            (str(o.pk), o.name) for o in self.organizations
        ]
        self.fields["measure"].choices = [("", "All measures")] + [
            (code, code) for code in sorted(MEASURE_CODES)
        ]
        self.teams = {}
        if apps.is_installed("worklists"):
            from worklists.models import Team

            self.teams = {
                str(t.pk): t
                for t in Team.objects.filter(organization_id__in=org_ids).order_by("name")
            }
        self.fields["team"].choices = [("", "All teams")] + [
            (pk, team.name) for pk, team in self.teams.items()
        ]
        self.agents = {str(u.pk): u for u in users_for(user).order_by("username")}
        self.fields["agent"].choices = [("", "Everyone")] + [
            (pk, u.username) for pk, u in self.agents.items()
        ]

    def clean(self):
        data = super().clean()
        today = timezone.now().date().replace(day=1)
        end = data.get("end") or today
        start = data.get("start") or (end - dt.timedelta(days=31 * 11)).replace(day=1)
        if start > end:
            raise forms.ValidationError("The first month is after the last month.")
        if len({(m.year, m.month) for m in _months(start, end)}) > MAX_MONTHS:
            raise forms.ValidationError(f"At most {MAX_MONTHS} months at a time.")
        data["start"], data["end"] = start, end
        return data

    def filters(self) -> Filters:
        data = self.cleaned_data
        org_ids = [o.pk for o in self.organizations]
        if data.get("organization"):
            org_ids = [int(data["organization"])]
        agent_ids = None
        team_id = None
        if data.get("team"):
            team = self.teams[data["team"]]
            team_id = team.pk
            agent_ids = list(team.members.values_list("pk", flat=True))
        if data.get("agent"):
            agent_ids = [int(data["agent"])]
        return Filters(
            organization_ids=org_ids,
            start=data["start"],
            end=_last_day(data["end"]),
            measure=data.get("measure") or "",
            agent_ids=agent_ids,
            team_id=team_id,
        )


def _months(start: dt.date, end: dt.date):
    month = start
    while month <= end:
        yield month
        month = (month + dt.timedelta(days=32)).replace(day=1)
