"""Read-only admin for measures, value sets, evaluation runs, import runs and results.

These rows are written by commands and the engine only; admin shows them (scoped by the
user's organizations) with the evidence behind each result, and never edits or deletes them.
"""

from django.contrib import admin
from django.http import Http404
from django.utils.html import format_html_join

from carehub.admin_base import CappedCountPaginator
from gaps import selectors
from gaps.models import EvaluationRun, Measure, MeasureResult, ValueSet
from patients.clinical import ImportRun


class ReadOnlyScopedAdmin(admin.ModelAdmin):
    selector = None
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50

    def get_queryset(self, request):
        queryset = type(self).selector(request.user)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_paginator(self, request, queryset, per_page, *args, **kwargs):
        return self.paginator.for_request(request, queryset, per_page, *args, **kwargs)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404("No such record")


@admin.register(Measure)
class MeasureAdmin(ReadOnlyScopedAdmin):
    selector = selectors.measures_for
    list_display = ("cms", "version", "title", "inverse", "first_year")
    list_filter = ("version",)


@admin.register(ValueSet)
class ValueSetAdmin(ReadOnlyScopedAdmin):
    selector = selectors.value_sets_for
    list_display = ("oid", "title", "version", "expansion_identifier", "code_count", "truncated")
    search_fields = ("=oid", "^title")
    readonly_fields = ("loaded_by", "loaded_at")

    @admin.display(boolean=True)
    def truncated(self, value_set: ValueSet) -> bool:
        return value_set.truncated


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyScopedAdmin):
    selector = selectors.evaluation_runs_for
    list_display = ("__str__", "organization", "period_start", "period_end", "actor", "started_at")


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyScopedAdmin):
    selector = selectors.import_runs_for
    list_display = ("__str__", "organization", "status", "actor", "started_at", "finished_at")
    list_filter = ("status",)
    fields = (
        "organization",
        "actor",
        "source",
        "partial",
        "status",
        "started_at",
        "finished_at",
        "files",
        "counts",
        "report",
    )
    readonly_fields = fields


@admin.register(MeasureResult)
class MeasureResultAdmin(ReadOnlyScopedAdmin):
    selector = selectors.measure_results_for
    list_display = (
        "patient",
        "measure",
        "period_start",
        "status",
        "gap_status",
        "ip",
        "denom",
        "denex",
        "numer",
    )
    list_filter = ("status", "measure__cms")
    raw_id_fields = ("patient",)
    fields = (
        "organization",
        "patient",
        "measure",
        "period_start",
        "period_end",
        "ip",
        "denom",
        "denex",
        "numer",
        "status",
        "gap_status",
        "evidence_list",
        "evaluation_run",
        "evaluated_at",
    )
    readonly_fields = fields

    @admin.display(description="evidence")
    def evidence_list(self, result: MeasureResult):
        return format_html_join(
            "\n",
            "<div>{} {} {}</div>",
            (
                (e.get("criterion", ""), e.get("resource", ""), e.get("date") or "")
                for e in result.evidence
            ),
        )


from gaps import gap_admin  # noqa: E402,F401  (care gaps, evidence files, gap lists)
