"""Auditor screens: the access log, patient timelines, user activity and the hash-chain seals.

Everything here reads; nothing changes or deletes (no add/change/delete permission for anyone,
superusers included). Every screen starts from the auditor's organizations, and a timeline or
activity page is itself a PHI read, so it is logged.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit import exports, timeline
from audit.filters import DateRangeFilter
from audit.forms import DateRangeForm, TimelineFilterForm
from audit.models import AccessLog, PatientTimeline, Seal, UserActivity
from audit.selectors import access_log_for, activity_users_for
from audit.services import log_access
from audit.timeline import contains_id
from carehub.admin_base import CappedCountPaginator
from patients.admin import OrganizationFilter, PatientAdmin
from patients.models import Patient
from patients.selectors import organizations_for, patients_for

# A timeline or activity page shows at most this many events (the newest); exports the same.
MAX_EVENTS = 5000
EXPORT_FORMATS = ("csv", "json", "pdf")


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Auditors browse who read which PHI. Nobody, not even a superuser, edits it here."""

    list_display = (
        "at",
        "user",
        "action",
        "channel",
        "model",
        "object_count",
        "shown_ids",
        "shown_patients",
        "client_address",
        "organization",
    )
    list_filter = (("at", DateRangeFilter), "action", "channel", "model", OrganizationFilter)
    list_select_related = ("user", "organization")
    search_fields = ("=user__username",)
    search_help_text = (
        "A username; a record id to find every read of that record; "
        "“patient:198” for every read of anything of patient 198."
    )
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 100
    export_cap = 100_000

    def get_queryset(self, request):
        return access_log_for(request.user)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.lower().startswith("patient:"):
            value = term.split(":", 1)[1].strip()
            if not value.isdigit():
                raise IncorrectLookupParameters("patient: needs a patient id")
            return queryset.filter(contains_id("patient_ids", int(value))), False
        if term.isdigit():
            return queryset.filter(contains_id("object_ids", int(term))), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="ids")
    def shown_ids(self, entry: AccessLog) -> str:
        ids = entry.object_ids[:10]
        more = "…" if entry.object_count > len(ids) else ""
        return ", ".join(str(pk) for pk in ids) + more

    @admin.display(description="patients")
    def shown_patients(self, entry: AccessLog) -> str:
        ids = entry.patient_ids[:10]
        more = "…" if len(entry.patient_ids) > len(ids) else ""
        return ", ".join(str(pk) for pk in ids) + more

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="audit_accesslog_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """The rows of the changelist as filtered (same parameters), as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, "These filters are not valid; nothing was exported.")
            return HttpResponseRedirect(reverse("admin:audit_accesslog_changelist"))
        entries = list(
            changelist.queryset.select_related("user", "organization")[: self.export_cap]
        )
        log_access(request, entries, action=AccessLog.Action.EXPORT)
        response = StreamingHttpResponse(exports.access_log_csv(entries), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="access-log.csv"'
        return response


def _event_page(request, admin_site, *, title, form, events, truncated, intro_template, extra):
    query = request.GET.copy()
    links = []
    for fmt in EXPORT_FORMATS:
        query["format"] = fmt
        links.append((fmt.upper(), "?" + query.urlencode()))
    return TemplateResponse(
        request,
        intro_template,
        {
            **admin_site.each_context(request),
            "title": title,
            "form": form,
            "events": events,
            "truncated": truncated,
            "export_links": links,
            **extra,
        },
    )


def _export(events, fmt: str, *, filename: str, title: str, subject: dict, lines: list[str]):
    if fmt == "csv":
        response = StreamingHttpResponse(exports.events_csv(events), content_type="text/csv")
    elif fmt == "json":
        response = HttpResponse(
            exports.events_json(events, subject=subject), content_type="application/json"
        )
    else:
        response = HttpResponse(
            exports.events_pdf(events, title=title, subtitle_lines=lines),
            content_type="application/pdf",
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


def _filter_lines(form) -> list[str]:
    if not form.is_bound or not form.is_valid():
        return ["Filters: none"]
    shown = [f"{name}={value}" for name, value in form.cleaned_data.items() if value]
    return ["Filters: " + (", ".join(shown) if shown else "none")]


@admin.register(PatientTimeline)
class PatientTimelineAdmin(ReadOnlyAdminMixin, PatientAdmin):
    """Find a patient (exact MRN, member id or name prefix), then open their timeline."""

    list_display = ("mrn", "display_name", "birth_date", "organization", "timeline_link")
    list_display_links = None
    actions = None

    @admin.display(description="Timeline")
    def timeline_link(self, patient: Patient) -> str:
        url = reverse("admin:audit_patienttimeline_timeline", args=[patient.pk])
        return format_html('<a href="{}">Open timeline</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:patient_id>/timeline/",
                self.admin_site.admin_view(self.timeline_view),
                name="audit_patienttimeline_timeline",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return HttpResponseRedirect(
            reverse("admin:audit_patienttimeline_timeline", args=[object_id])
        )

    def timeline_view(self, request, patient_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        patient = patients_for(request.user).filter(pk=patient_id).first()
        if patient is None:
            raise Http404("No such patient")
        params = request.GET.copy()
        fmt = params.pop("format", [""])[-1]
        form = TimelineFilterForm(params or None)
        events: list = []
        if not form.is_bound or form.is_valid():
            start, end = form.instants() if form.is_bound else (None, None)
            actor_id = None
            username = form.cleaned_data.get("actor") if form.is_bound else ""
            if username:
                actor_id = (
                    get_user_model()
                    .objects.filter(username=username)
                    .values_list("pk", flat=True)
                    .first()
                )
                if actor_id is None:
                    form.add_error("actor", f"No user named “{username}”.")
            if not form.errors:
                events = timeline.patient_timeline(
                    patient,
                    start=start,
                    end=end,
                    kinds=form.kinds() if form.is_bound else timeline.KINDS,
                    actor_id=actor_id,
                    record_type=form.cleaned_data.get("record", "") if form.is_bound else "",
                )
        truncated = len(events) > MAX_EVENTS
        events = events[-MAX_EVENTS:]
        title = f"Timeline of patient #{patient.pk} (MRN {patient.mrn})"
        if fmt in EXPORT_FORMATS and not form.errors:
            log_access(request, [patient], action=AccessLog.Action.EXPORT)
            return _export(
                events,
                fmt,
                filename=f"patient-{patient.pk}-timeline",
                title=title,
                subject={"patient_id": patient.pk, "mrn": patient.mrn},
                lines=[
                    f"Patient #{patient.pk}, MRN {patient.mrn}, {patient.organization.name}",
                    f"Exported by {request.user.username}",
                    *_filter_lines(form),
                ],
            )
        log_access(request, [patient], action=AccessLog.Action.HISTORY)
        return _event_page(
            request,
            self.admin_site,
            title=title,
            form=form,
            events=events,
            truncated=truncated,
            intro_template="admin/audit/events.html",
            extra={"opts": self.model._meta, "subject": patient},
        )


@admin.register(UserActivity)
class UserActivityAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Pick a user of the auditor's organizations, then read everything they did and saw."""

    list_display = ("username", "is_active", "last_login", "activity_link")
    list_display_links = None
    search_fields = ("^username",)
    actions = None
    show_full_result_count = False
    paginator = CappedCountPaginator

    def get_queryset(self, request):
        return activity_users_for(request.user)

    @admin.display(description="Activity")
    def activity_link(self, user) -> str:
        url = reverse("admin:audit_useractivity_activity", args=[user.pk])
        return format_html('<a href="{}">Open activity</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:user_id>/activity/",
                self.admin_site.admin_view(self.activity_view),
                name="audit_useractivity_activity",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:audit_useractivity_activity", args=[object_id]))

    def activity_view(self, request, user_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        subject = self.get_queryset(request).filter(pk=user_id).first()
        if subject is None:
            raise Http404("No such user")
        params = request.GET.copy()
        fmt = params.pop("format", [""])[-1]
        form = DateRangeForm(params or None)
        events: list = []
        if not form.is_bound or form.is_valid():
            start, end = form.instants() if form.is_bound else (None, None)
            events = timeline.user_activity(
                subject,
                organization_ids=list(organizations_for(request.user).values_list("pk", flat=True)),
                start=start,
                end=end,
                limit=MAX_EVENTS + 1,
            )
        truncated = len(events) > MAX_EVENTS
        events = events[-MAX_EVENTS:]
        # The page shows PHI of the patients behind the changes: their reads are logged.
        seen = Patient.objects.filter(
            pk__in={e.patient_id for e in events if e.patient_id is not None}
        ).only("pk", "organization_id")
        title = f"Activity of {subject.username}"
        if fmt in EXPORT_FORMATS and not form.errors:
            log_access(request, seen, action=AccessLog.Action.EXPORT)
            return _export(
                events,
                fmt,
                filename=f"user-{subject.pk}-activity",
                title=title,
                subject={"user_id": subject.pk, "username": subject.username},
                lines=[
                    f"User {subject.username}",
                    f"Exported by {request.user.username}",
                    *_filter_lines(form),
                ],
            )
        log_access(request, seen, action=AccessLog.Action.HISTORY)
        return _event_page(
            request,
            self.admin_site,
            title=title,
            form=form,
            events=events,
            truncated=truncated,
            intro_template="admin/audit/events.html",
            extra={"opts": self.model._meta, "subject": subject},
        )


@admin.register(Seal)
class SealAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The hash chain: which rows of which audit table were sealed, when, with which digest.
    `manage.py verify_audit_chain` checks the tables against them."""

    list_display = ("sealed_at", "table", "first_id", "last_id", "row_count", "short_digest")
    list_filter = ("table",)
    fields = (
        "sealed_at",
        "table",
        "first_id",
        "last_id",
        "row_count",
        "previous",
        "previous_digest",
        "digest",
    )
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator

    def get_queryset(self, request):
        return super().get_queryset(request).defer("row_digests")

    @admin.display(description="digest")
    def short_digest(self, seal: Seal) -> str:
        return seal.digest[:16] + "…"


def timeline_panel(request, patient) -> SafeString:
    """On the patient page, for auditors: the way to everything that happened to the patient."""
    if not request.user.has_perm("audit.view_patienttimeline"):
        return SafeString("")
    url = reverse("admin:audit_patienttimeline_timeline", args=[patient.pk])
    return format_html(
        '<div class="module" id="audit-timeline-panel"><h2>Audit</h2><p style="padding:8px 10px">'
        '<a href="{}" class="button">Open the patient timeline</a> every change to this '
        "patient's records and every read of them, with exports.</p></div>",
        url,
    )


def register_patient_panel() -> None:
    from patients.admin import register_patient_panel as register

    register(timeline_panel)
