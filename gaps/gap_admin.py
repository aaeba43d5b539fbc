"""Care gaps in admin: the agents' worklist and gap page, evidence files, gap-list uploads.

The changelist is built for millions of gaps: filters that map onto the (organization, …,
next_step_due, id) indexes, exact MRN or member-id search, a capped count, and every row's
patient, measure and owner joined in the same query. The gap page is read-only; its buttons
open one small form per transition the user's role may make, and each form calls the service.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_list import result_headers, result_list
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_field, display_for_value, quote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import Exists, OuterRef
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit.models import AccessLog
from audit.services import log_access
from carehub.admin_base import PhiAdminMixin, ScopedAdmin
from carehub.errors import DomainError
from consent.models import Channel
from gaps import selectors, workflow
from gaps.care_gaps import (
    OPEN_STATES,
    CareGap,
    GapEvidence,
    GapListImport,
    GapSource,
    GapState,
    NotAGapReason,
    SourceKind,
)
from gaps.gap_lists import LIST_KINDS, apply_gap_list, parse_gap_list, receive_gap_list
from gaps.measures import MEASURE_CODES
from patients.selectors import organizations_for, patients_for, search_patients

# Hooks for apps that build on gaps (which gaps must not import): a service that replaces a
# transition's own in the admin form (outreach starts outreach through the contact policy), and
# panels shown on the gap page (outreach's call log and "Log a call").
TRANSITION_ROUTES: dict[str, Callable] = {}
GAP_PANELS: list[Callable] = []
BY_TARGET = {t.service: t.target for t in workflow.TRANSITIONS}


def register_transition_route(service: str, make: Callable) -> None:
    TRANSITION_ROUTES[service] = make


def register_gap_panel(render: Callable) -> None:
    if render not in GAP_PANELS:
        GAP_PANELS.append(render)


class MeasureFilter(admin.SimpleListFilter):
    title = "measure"
    parameter_name = "measure"

    def lookups(self, request, model_admin):
        return [(code, code) for code in MEASURE_CODES]

    def queryset(self, request, queryset):
        return queryset.filter(measure_code=self.value()) if self.value() else queryset


class DueFilter(admin.SimpleListFilter):
    """When the next step is due, in the buckets a team lead plans by."""

    title = "next step due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [
            ("overdue", "Overdue"),
            ("today", "Today"),
            ("week", "Within 7 days"),
            ("month", "Within 30 days"),
            ("later", "Later"),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        bounds = {
            "overdue": {"next_step_due__lt": today},
            "today": {"next_step_due": today},
            "week": {"next_step_due__gte": today, "next_step_due__lte": today + dt.timedelta(7)},
            "month": {"next_step_due__gte": today, "next_step_due__lte": today + dt.timedelta(30)},
            "later": {"next_step_due__gt": today + dt.timedelta(30)},
        }
        return queryset.filter(**bounds[self.value()]) if self.value() in bounds else queryset


class SourceFilter(admin.SimpleListFilter):
    title = "reported by"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return SourceKind.choices

    def queryset(self, request, queryset):
        if self.value() not in SourceKind.values:
            return queryset
        reported = GapSource.objects.filter(gap=OuterRef("pk"), kind=self.value())
        return queryset.filter(Exists(reported))


class WorkFilter(admin.SimpleListFilter):
    """The list is a worklist: open gaps that can still close come first and alone, unless the
    user asks for ended periods (with the reason they left), finished gaps, or all."""

    title = "work"
    parameter_name = "work"

    def lookups(self, request, model_admin):
        return [
            ("ended", "Period ended: can no longer close"),
            ("finished", "Finished (closed, not a gap, declined, unreachable)"),
            ("all", "All gaps"),
        ]

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Open work",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "all" or (self.value() is None and "state__exact" in request.GET):
            return queryset  # a state picked by hand is shown whatever the period
        if self.value() == "ended":
            return queryset.period_ended(today)
        if self.value() == "finished":
            return queryset.exclude(state__in=OPEN_STATES)
        return queryset.working(today)


class PeriodFilter(admin.SimpleListFilter):
    title = "measurement year"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        year = timezone.localdate().year
        return [(str(y), str(y)) for y in range(year + 1, year - 4, -1)]

    def queryset(self, request, queryset):
        if not (self.value() or "").isdigit():
            return queryset
        return queryset.filter(period_start__year=int(self.value()))


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [("mine", "Mine"), ("unassigned", "Nobody"), ("someone", "Someone")]

    def queryset(self, request, queryset):
        if self.value() == "mine":
            return queryset.filter(owner=request.user)
        if self.value() == "unassigned":
            return queryset.filter(owner__isnull=True)
        if self.value() == "someone":
            return queryset.filter(owner__isnull=False)
        return queryset


class GapChangeList(ChangeList):
    """The worklist's changelist: two joins instead of four, and rows written straight to HTML.

    Django renders each cell through lookup_field, display_for_* and format_html and reverses
    the change URL (and resolves it again for the preserved filters) on every row: 14 ms of CPU
    for a 50-row page, the largest part of the page, when 50 agents share two cores. `table`
    makes the same markup with each column's rule decided once per page (the rules of Django's
    items_for_result); a test compares the two renderings.
    """

    def get_queryset(self, request, exclude_parameters=None):
        # The selector also joins the measure and the organization (the gap page uses them):
        # on the list they would be fetched and built into 100 unused objects per page.
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.select_related(None).select_related(*self.list_select_related)

    def get_results(self, request):
        super().get_results(request)
        page = self.result_list
        if isinstance(page, models.QuerySet) and page.query.low_mark:
            # Past page 1 the rows skipped by OFFSET were joined to their patient too (page 50:
            # 2,500 patient reads, 77 ms at 3,000,000 gaps): pick the page's ids first, then join
            # those 50. The ids come from the scoped, filtered, ordered list itself.
            self.result_list = (
                self.model._default_manager.filter(pk__in=page.values("pk"))
                .select_related(*self.list_select_related)
                .order_by(*page.query.order_by)
            )

    @cached_property
    def table(self) -> dict:
        """The context of admin/change_list_results.html, as the result_list tag makes it."""
        if (
            self.formset is not None
            or self.is_popup
            or not self.list_display_links
            or "action_checkbox" in self.list_display
        ):
            return result_list(self)  # Django's own rendering for what the worklist never has
        headers = list(result_headers(self))
        columns = [self._column(name) for name in self.list_display]
        return {
            "cl": self,
            "result_hidden_fields": [],
            "result_headers": headers,
            "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
            "results": [
                [mark_safe("".join(cell(gap) for cell in columns))]  # noqa: S308 (escaped)
                for gap in self.result_list
            ],
        }

    def _column(self, name: str) -> Callable[[models.Model], str]:
        """One list_display entry as a function of a row returning its escaped cell."""
        empty = self.model_admin.get_empty_value_display()
        try:
            field = self.lookup_opts.get_field(name)
        except FieldDoesNotExist:
            field = None
        if field is None:
            method = getattr(self.model_admin, name)
            empty = getattr(method, "empty_value_display", empty)

            def content(row):
                value = method(row)
                if isinstance(value, str) and value.strip() == "":
                    value = ""
                nowrap = isinstance(value, dt.date | dt.time)
                return display_for_value(value, empty), nowrap

        else:
            nowrap = isinstance(field, models.DateField | models.TimeField | models.ForeignKey)
            if field.is_relation:

                def content(row):
                    related = getattr(row, field.name)
                    return (empty if related is None else related), nowrap

            elif field.flatchoices:
                labels = dict(field.flatchoices)

                def content(row):
                    value = getattr(row, field.attname)
                    if isinstance(value, str) and value.strip() == "":
                        value = ""
                    return labels.get(value, empty), nowrap

            else:

                def content(row):
                    value = getattr(row, field.attname)
                    return display_for_field(value, field, empty), nowrap

        def cell(row):
            value, nowrap = content(row)
            wrap = " nowrap" if nowrap else ""
            return f'<td class="field-{name}{wrap}">{conditional_escape(value)}</td>'

        if name not in self.list_display_links:
            return cell
        tag = "th" if name == self._first_link else "td"
        # One URL reversed (and its preserved filters resolved) per page; each row puts its id
        # in place of the marker.
        marker = "0000000000"
        url = add_preserved_filters(
            {"preserved_filters": self.preserved_filters, "opts": self.opts},
            reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[marker],
                current_app=self.model_admin.admin_site.name,
            ),
        )
        before, after = conditional_escape(url).split(marker, 1)

        def link(row):
            value, nowrap = content(row)
            wrap = " nowrap" if nowrap else ""
            href = f"{before}{conditional_escape(quote(row.pk))}{after}"
            return (
                f'<{tag} class="field-{name}{wrap}"><a href="{href}">'
                f"{conditional_escape(value)}</a></{tag}>"
            )

        return link

    @cached_property
    def _first_link(self) -> str:
        return next(name for name in self.list_display if name in self.list_display_links)


@admin.register(CareGap)
class CareGapAdmin(PhiAdminMixin, ScopedAdmin):
    selector = selectors.care_gaps_for
    # Seven columns that fit a 1366 px screen: the patient and the measure carry their details.
    list_display = (
        "gap",
        "patient_name",
        "measure_period",
        "state",
        "next_step_when",
        "primary_source",
        "owner",
    )
    list_display_links = ("gap",)
    list_filter = (
        WorkFilter,
        PeriodFilter,
        OwnerFilter,
        MeasureFilter,
        "state",
        DueFilter,
        SourceFilter,
        "needs_coordination",
    )
    search_fields = ("=patient__mrn",)  # switches the box on; get_search_results does the work
    search_help_text = "Name prefix (“smi”, “smith, jo”), exact MRN or payer member id."
    # Organization first: with a user's organizations as an IN (...) filter, only an order that
    # starts with the organization reads the (organization, ..., next_step_due, id) indexes in
    # order; ordering by due date alone sorts every gap of the client (1.4 s at 500,000 gaps).
    # Priority inside a day: the heavier measure first (the worklists add the risk tier).
    ordering = ("organization_id", "next_step_due", "-measure_weight", "id")
    list_select_related = ("patient", "owner")
    change_form_template = "admin/gaps/caregap/change_form.html"
    fields = (
        "patient_link",
        "measure",
        "period_start",
        "period_end",
        "state",
        "next_step",
        "next_step_due",
        "due_date",
        "missing",
        "owner",
        "primary_source",
        "measure_weight",
        "not_a_gap_reason",
        "scheduled_for",
        "completed_on",
        "closed_at",
        "needs_coordination",
        "coordination_due",
    )
    readonly_fields = fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the page is read-only; transitions have their own forms

    def get_changelist(self, request, **kwargs):
        return GapChangeList

    def add_view(self, request, form_url="", extra_context=None):
        """A gap staff found themselves: the patient by MRN, the measure, the year, why."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = OpenGapForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            patient = patients_for(request.user).filter(mrn=data["mrn"]).first()
            if patient is None:
                form.add_error("mrn", "No patient with this MRN in your organizations")
            else:
                try:
                    gap = workflow.open_gap(
                        patient,
                        measure_code=data["measure"],
                        actor=request.user,
                        reason=data["reason"],
                        year=data["year"],
                        due_date=data["due_date"],
                        missing=data["missing"],
                    )
                except DomainError as error:
                    form.add_error(None, str(error))
                else:
                    messages.success(request, f"Gap #{gap.pk} opened.")
                    return redirect("admin:gaps_caregap_change", gap.pk)
        return TemplateResponse(
            request,
            "admin/gaps/caregap/transition_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Open a care gap",
                "form": form,
            },
        )

    @admin.display(description="gap", ordering="id")
    def gap(self, gap: CareGap) -> str:
        return f"#{gap.pk}"

    @admin.display(description="MRN")
    def patient_mrn(self, gap: CareGap) -> str:
        return gap.patient.mrn

    @admin.display(description="patient")
    def patient_name(self, gap: CareGap):
        return format_html(
            '{} <span class="mrn" style="color:var(--body-quiet-color)">{}</span>',
            gap.patient.display_name,
            gap.patient.mrn,
        )

    @admin.display(description="measure", ordering="measure_code")
    def measure_period(self, gap: CareGap):
        year = gap.period_start.year
        if gap.is_open and gap.period_end < timezone.localdate():
            closable = gap.state in (GapState.SCHEDULED, GapState.COMPLETED)
            note = "period ended" if closable else "period ended: can no longer close"
            return format_html(
                '{} {} <span class="period-ended" style="color:#ba2121">({})</span>',
                gap.measure_code,
                year,
                note,
            )
        return f"{gap.measure_code} {year}"

    @admin.display(description="next step", ordering="next_step_due")
    def next_step_when(self, gap: CareGap) -> str:
        if not gap.next_step:
            return "—"
        return f"{gap.get_next_step_display()}, {gap.next_step_due:%Y-%m-%d}"

    @admin.display(description="patient")
    def patient_link(self, gap: CareGap):
        url = reverse("admin:patients_patient_change", args=[gap.patient_id])
        return format_html(
            '<a href="{}">{} — {}</a>', url, gap.patient.mrn, gap.patient.display_name
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        patients = search_patients(patients_for(request.user), term)
        return queryset.filter(patient__in=patients.values("pk")), False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:gap_id>/transition/<str:service>/",
                wrap(self.transition_view),
                name="gaps_caregap_transition",
            ),
            path(
                "evidence/<int:evidence_id>/file/",
                wrap(self.evidence_file_view),
                name="gaps_gapevidence_file",
            ),
            *super().get_urls(),
        ]

    def _require_visible(self, request, object_id):
        # The gap page reads its gap three times (its panels, Django's form, the access log):
        # one query, kept for the rest of a GET (nothing changes it there).
        seen = getattr(request, "_carehub_visible_gap", None)
        if seen is not None and str(seen.pk) == str(object_id):
            return seen
        gap = super()._require_visible(request, object_id)
        if request.method == "GET":
            request._carehub_visible_gap = gap
        return gap

    def get_object(self, request, object_id, from_field=None):
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        try:
            return self._require_visible(request, object_id)
        except Http404:
            return None  # Django's "does not exist" path: a 404 (ScopedAdmin)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        gap = self._require_visible(request, object_id)
        result = selectors.engine_results([gap]).get(gap.pk)
        extra_context = {
            **(extra_context or {}),
            "gap": gap,
            "transitions": [
                (t.service, LABELS[t.service])
                for t in workflow.available_transitions(gap, request.user)
            ],
            "result": result,
            "sources": gap.sources.select_related("list_import").all(),
            "evidence": gap.evidence.select_related("added_by").all(),
            "transition_history": gap.history.select_related("history_user").order_by(
                "-history_date", "-history_id"
            ),
            "window": workflow.window_for(gap),
            "gap_panels": [render(request, gap) for render in GAP_PANELS],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def transition_view(self, request, gap_id: int, service: str):
        gap = self._require_visible(request, gap_id)
        if service not in workflow.SERVICES:
            raise Http404("No such transition")
        if workflow.allowed_transition(gap, service, request.user) is None:
            if not workflow.can_make(request.user, workflow.BY_SERVICE[service], gap.state):
                raise PermissionDenied
            messages.error(
                request,
                f"This gap is {gap.get_state_display().lower()}: it cannot "
                f"{service.replace('_', ' ')} now.",
            )
            return redirect("admin:gaps_caregap_change", gap.pk)
        form = transition_form(service)(
            request.POST if request.method == "POST" else None, request.FILES or None
        )
        if request.method == "POST" and form.is_valid():
            make = TRANSITION_ROUTES.get(service, workflow.SERVICES[service])
            try:
                result = make(gap, actor=request.user, **form.service_kwargs())
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                # A routed service may end elsewhere (e.g. review instead of outreach) and says so.
                note = getattr(result, "message", "")
                if note and getattr(result, "state", "") != BY_TARGET.get(service):
                    messages.warning(request, f"Gap #{gap.pk}: {note}")
                else:
                    messages.success(
                        request, f"Gap #{gap.pk}: {note or LABELS[service].lower() + ' — done.'}"
                    )
                return redirect("admin:gaps_caregap_change", gap.pk)
        log_access(request, [gap], action=AccessLog.Action.VIEW)
        return TemplateResponse(
            request,
            "admin/gaps/caregap/transition_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"{LABELS[service]} — gap #{gap.pk}",
                "gap": gap,
                "form": form,
                "window": workflow.window_for(gap),
            },
        )

    def evidence_file_view(self, request, evidence_id: int):
        if not request.user.has_perm("gaps.view_gapevidence"):
            raise PermissionDenied
        evidence = (
            selectors.gap_evidence_for(request.user)
            .filter(pk=evidence_id)
            .exclude(attachment="")
            .first()
        )
        if evidence is None:
            raise Http404("No such file")
        log_access(request, [evidence.gap], action=AccessLog.Action.EXPORT)
        extension = mimetypes.guess_extension(evidence.attachment_type) or ""
        response = FileResponse(
            workflow.open_evidence_file(evidence, actor=request.user),
            as_attachment=True,
            filename=f"evidence-{evidence.pk}{extension}",
            content_type=evidence.attachment_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response


# -- one small form per transition ------------------------------------------------------------


class OpenGapForm(forms.Form):
    mrn = forms.CharField(max_length=64, label="Patient MRN")
    measure = forms.ChoiceField(choices=[(code, code) for code in MEASURE_CODES])
    year = forms.IntegerField(
        min_value=2000,
        max_value=2100,
        initial=lambda: timezone.now().year,
        label="Measurement year",
    )
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    missing = forms.CharField(max_length=200, required=False, label="What is missing")
    reason = forms.CharField(max_length=200, label="Why (what shows it is due)")


LABELS = {
    "start_review": "Start records review",
    "validate_gap": "Validate (still due)",
    "mark_not_a_gap": "Not a gap",
    "record_outreach_started": "Outreach started",
    "mark_scheduled": "Scheduled",
    "mark_completed": "Service completed",
    "close_gap": "Close with evidence",
    "flag_for_review": "Flag for coordinator review",
    "mark_declined": "Patient declined",
    "mark_unreachable": "Unreachable",
    "reopen_after_no_show": "No-show: back to outreach",
}
_DATE = {"widget": forms.DateInput(attrs={"type": "date"})}
MANUAL_EVIDENCE = [(k, v) for k, v in GapEvidence.Kind.choices if k != "engine_resource"]


def _field(name: str, required: bool) -> forms.Field:
    return {
        "reason": lambda: forms.CharField(
            max_length=200, required=required, widget=forms.Textarea(attrs={"rows": 2})
        ),
        "not_a_gap_reason": lambda: forms.ChoiceField(
            choices=NotAGapReason.choices, label="Why it is not a gap"
        ),
        "evidence_kind": lambda: forms.ChoiceField(
            choices=[("", "—"), *MANUAL_EVIDENCE], required=required, label="Evidence type"
        ),
        "service_date": lambda: forms.DateField(
            required=required, label="Date of service", **_DATE
        ),
        "reference": lambda: forms.CharField(
            max_length=300,
            required=False,
            help_text="Accession number, claim id or document id (or attach the file)",
        ),
        "attachment": lambda: forms.FileField(
            required=False, help_text="PDF, PNG, JPEG or text, up to 10 MB"
        ),
        "next_attempt_on": lambda: forms.DateField(
            required=False, label="Next attempt on", **_DATE
        ),
        "appointment_on": lambda: forms.DateField(label="Appointment date", **_DATE),
        "completed_on": lambda: forms.DateField(required=False, label="Done on", **_DATE),
        "channel": lambda: forms.ChoiceField(
            choices=Channel.choices,
            initial=Channel.PHONE,
            help_text="The contact policy decides; a patient nobody may contact goes to review",
        ),
        "systolic_bp": lambda: forms.IntegerField(
            required=False, min_value=0, label="Systolic (mmHg)", help_text="CMS165 only"
        ),
        "diastolic_bp": lambda: forms.IntegerField(
            required=False, min_value=0, label="Diastolic (mmHg)", help_text="CMS165 only"
        ),
        "hba1c_percent": lambda: forms.DecimalField(
            required=False,
            max_digits=4,
            decimal_places=1,
            label="HbA1c (%)",
            help_text="CMS122 only",
        ),
    }[name]()


# Fields per transition: (name, required). Exactly what each service asks for.
FORM_FIELDS = {
    "start_review": [("reason", False)],
    "validate_gap": [("reason", False)],
    "mark_not_a_gap": [
        ("not_a_gap_reason", True),
        ("reason", True),
        ("evidence_kind", False),
        ("service_date", False),
        ("reference", False),
        ("attachment", False),
    ],
    "record_outreach_started": [("channel", True), ("next_attempt_on", False), ("reason", False)],
    "mark_scheduled": [("appointment_on", True), ("reason", False)],
    "mark_completed": [("completed_on", False), ("reason", False)],
    "close_gap": [
        ("service_date", True),
        ("evidence_kind", True),
        ("reference", False),
        ("attachment", False),
        ("systolic_bp", False),
        ("diastolic_bp", False),
        ("hba1c_percent", False),
        ("reason", False),
    ],
    "flag_for_review": [("reason", True)],
    "mark_declined": [("reason", True)],
    "mark_unreachable": [("reason", True)],
    "reopen_after_no_show": [("next_attempt_on", False), ("reason", False)],
}


class TransitionForm(forms.Form):
    def service_kwargs(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        return data


def transition_form(service: str) -> type[TransitionForm]:
    fields = {name: _field(name, required) for name, required in FORM_FIELDS[service]}
    return type(f"{service.title().replace('_', '')}Form", (TransitionForm,), fields)


# -- gap-list uploads -------------------------------------------------------------------------


class GapListUploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV with columns mrn or member_id, measure, due_date; "
        "optional missing, source, last_service_date"
    )
    organization = forms.ModelChoiceField(queryset=None)
    source_name = forms.CharField(max_length=100, label="Source", help_text="e.g. the payer's name")
    source_kind = forms.ChoiceField(choices=[(k.value, k.label) for k in LIST_KINDS])
    all_or_nothing = forms.BooleanField(
        required=False, help_text="Import nothing if any row is bad"
    )

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = organizations


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def describe_counts(counts: dict) -> str:
    """'7 rows: 5 good, 2 bad; 3 gaps opened, 1 sent to review, 1 already known'."""
    if not counts:
        return ""
    text = (
        f"{_count(counts.get('rows', 0), 'row', 'rows')}: "
        f"{counts.get('good', 0)} good, {counts.get('bad', 0)} bad"
    )
    if "duplicate_of" in counts:
        return f"{text}; same file as import #{counts['duplicate_of']}, nothing changed"
    outcomes = [
        _count(counts[key], one, many)
        for key, one, many in (
            ("opened", "gap opened", "gaps opened"),
            ("to_review", "sent to review", "sent to review"),
            ("already_known", "already known", "already known"),
            ("sources_added", "source added", "sources added"),
        )
        if counts.get(key)
    ]
    if counts.get("imported") == 0:
        outcomes = ["nothing imported"]
    return "; ".join([text, ", ".join(outcomes)]) if outcomes else text


@admin.register(GapListImport)
class GapListImportAdmin(PhiAdminMixin, ScopedAdmin):
    selector = selectors.gap_list_imports_for
    list_display = (
        "__str__",
        "organization",
        "source_name",
        "file_name",
        "status",
        "uploaded_by",
        "uploaded_at",
        "summary",
    )
    list_filter = ("status", "source_kind")
    fields = (
        "organization",
        "source_name",
        "source_kind",
        "file_name",
        "file_sha256",
        "all_or_nothing",
        "status",
        "summary",
        "problem_lines",
        "uploaded_by",
        "uploaded_at",
        "applied_at",
    )
    readonly_fields = fields

    # counts and problems are stored as JSON; the pages say them in words.
    @admin.display(description="outcome")
    def summary(self, record: GapListImport) -> str:
        return describe_counts(record.counts)

    @admin.display(description="problems")
    def problem_lines(self, record: GapListImport) -> str:
        if not record.problems:
            return "none"
        return format_html_join(
            mark_safe("<br>"), "line {}: {}", ((p["line"], p["reason"]) for p in record.problems)
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:import_id>/preview/",
                wrap(self.preview_view),
                name="gaps_gaplistimport_preview",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = GapListUploadForm(
            request.POST if request.method == "POST" else None,
            request.FILES or None,
            organizations=organizations_for(request.user),
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                record = receive_gap_list(
                    data["organization"],
                    content=data["file"].read(),
                    file_name=data["file"].name,
                    source_name=data["source_name"],
                    source_kind=data["source_kind"],
                    actor=request.user,
                    all_or_nothing=data["all_or_nothing"],
                )
            except DomainError as error:
                form.add_error("file", str(error))
            else:
                return redirect("admin:gaps_gaplistimport_preview", record.pk)
        return TemplateResponse(
            request,
            "admin/gaps/gaplistimport/upload.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Upload a gap list",
                "submit_label": "Preview",
                "form": form,
            },
        )

    def preview_view(self, request, import_id: int):
        if not self.has_add_permission(request):
            raise PermissionDenied
        record = self._require_visible(request, import_id)
        if request.method == "POST" and record.status == GapListImport.Status.PREVIEWED:
            try:
                record = apply_gap_list(record, actor=request.user)
            except DomainError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, f"{record}: {record.get_status_display()}.")
                return redirect("admin:gaps_gaplistimport_change", record.pk)
        rows = []
        if record.status == GapListImport.Status.PREVIEWED:
            record = GapListImport.objects.get(pk=record.pk)  # with the file content
            try:
                rows = parse_gap_list(bytes(record.content), record.organization).rows[:50]
            except DomainError as error:  # a list stored before a check it now fails
                if request.method != "POST":  # the failed apply has said so already
                    messages.error(request, str(error))
        log_access(request, [record], action=AccessLog.Action.VIEW)
        return TemplateResponse(
            request,
            "admin/gaps/gaplistimport/preview.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Preview of {record}",
                "record": record,
                "rows": rows,
            },
        )


def gaps_panel(request, patient) -> SafeString:
    """The patient page's list of this patient's care gaps, newest period first."""
    if not request.user.has_perm("gaps.view_caregap"):
        return SafeString("")
    gaps = CareGap.objects.filter(patient_id=patient.pk).order_by("-period_end", "measure_code")
    return render_to_string(
        "admin/gaps/caregap/patient_panel.html", {"gaps": gaps[:50]}, request=request
    )


def register_patient_panel() -> None:
    from patients.admin import register_patient_panel as register

    register(gaps_panel)
