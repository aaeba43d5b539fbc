"""The supervisor dashboard in admin: funnel, rates with their definitions, monthly trend,
callback times, work aging, agent productivity and quality, drawn with the vendored Chart.js;
the same figures as CSV. Supervisors see their own organizations only."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse

from metrics import exports
from metrics.forms import DashboardFilterForm
from metrics.models import Dashboard, SnapshotRun
from metrics.selectors import (
    AGING_DEFINITION,
    PRODUCTIVITY_DEFINITION,
    QUALITY_DEFINITION,
    build_dashboard,
)


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        from django.urls import path

        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            )
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        params = request.GET.copy()
        fmt = params.pop("format", [""])[-1]
        form = DashboardFilterForm(params, user=request.user)
        board = build_dashboard(form.filters()) if form.is_valid() else None
        if board is not None and fmt == "csv":
            response = StreamingHttpResponse(exports.dashboard_csv(board), content_type="text/csv")
            response["Content-Disposition"] = 'attachment; filename="metrics.csv"'
            return response
        query = params.copy()
        query["format"] = "csv"
        return TemplateResponse(
            request,
            "admin/metrics/dashboard.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Supervisor dashboard",
                "form": form,
                "board": board,
                "chart_data": exports.chart_data(board) if board else {},
                "csv_url": "?" + query.urlencode(),
                "aging_definition": AGING_DEFINITION,
                "productivity_definition": PRODUCTIVITY_DEFINITION,
                "quality_definition": QUALITY_DEFINITION,
                "last_run": SnapshotRun.objects.only("day", "started_at", "seconds").first(),
            },
        )
