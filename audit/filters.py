"""A from/to date filter for admin changelists (Django's date filter has fixed choices only)."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters

from audit.forms import day_start


class DateRangeFilter(admin.FieldListFilter):
    template = "admin/audit/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.from_param = f"{field_path}_from"
        self.to_param = f"{field_path}_to"
        self.request_params = request.GET
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "date"

    def expected_parameters(self) -> list[str]:
        return [self.from_param, self.to_param]

    def _day(self, name: str) -> dt.date | None:
        value = self.used_parameters.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        if not value:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError as error:
            raise IncorrectLookupParameters(f"{name}: not a date (YYYY-MM-DD)") from error

    @property
    def from_value(self) -> str:
        day = self._day(self.from_param)
        return day.isoformat() if day else ""

    @property
    def to_value(self) -> str:
        day = self._day(self.to_param)
        return day.isoformat() if day else ""

    def other_params(self) -> list[tuple[str, str]]:
        return [
            (name, value)
            for name, values in self.request_params.lists()
            if name not in (self.from_param, self.to_param, "p")
            for value in values
        ]

    def has_output(self) -> bool:
        return True

    def queryset(self, request, queryset):
        start, end = self._day(self.from_param), self._day(self.to_param)
        if start is not None:
            queryset = queryset.filter(**{f"{self.field_path}__gte": day_start(start)})
        if end is not None:
            end_instant = day_start(end + dt.timedelta(days=1))
            queryset = queryset.filter(**{f"{self.field_path}__lt": end_instant})
        return queryset

    def choices(self, changelist):
        return []
