"""Outreach in admin: log a call in one form, the patient's attempt log, templates, appointments
by day and site, follow-ups, letter batches. Scoped like every CareHub screen (carehub.admin_base);
lists are read-only and changes go through outreach.services.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AccessLog
from audit.services import log_access
from carehub.admin_base import PhiAdminMixin, ReasonForm, ScopedAdmin
from carehub.errors import DomainError
from gaps.care_gaps import CareGap
from outreach import selectors
from outreach.models import (
    CALL_OUTCOMES,
    Appointment,
    FollowUp,
    LetterBatch,
    MessageTemplate,
    Outcome,
    OutreachAttempt,
    WaitlistEntry,
)
from outreach.services import appointments as appointment_services
from outreach.services.calls import (
    CALLABLE,
    Booking,
    log_call,
    send_preferences_link,
    start_outreach,
)
from outreach.services.common import complete_follow_up
from outreach.services.letters import build_letter_batch
from outreach.templating import FIELDS, preview
from patients.selectors import organizations_for, patients_for, providers_for, sites_for


def _patient_link(row) -> SafeString:
    url = reverse("admin:patients_patient_change", args=[row.patient_id])
    return format_html('<a href="{}">{}</a>', url, row.patient.mrn)


class ReadOnlyOutreachAdmin(PhiAdminMixin, ScopedAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="patient (MRN)")
    def patient_mrn(self, row) -> SafeString:
        return _patient_link(row)


# -- templates --------------------------------------------------------------------------------


class TemplateForm(ReasonForm):
    class Meta:
        model = MessageTemplate
        fields = (
            "organization",
            "name",
            "purpose",
            "channel",
            "language",
            "content_class",
            "subject",
            "body",
            "is_active",
        )
        widgets = {"body": forms.Textarea(attrs={"rows": 6, "cols": 80})}


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ScopedAdmin):
    selector = selectors.templates_for
    form = TemplateForm
    list_display = (
        "name",
        "organization",
        "purpose",
        "channel",
        "language",
        "content_class",
        "is_active",
    )
    list_filter = ("purpose", "channel", "content_class", "is_active")
    readonly_fields = ("sample",)
    ordering = ("organization_id", "purpose", "channel", "language")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":
            kwargs["queryset"] = organizations_for(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        return [*TemplateForm.Meta.fields, "change_reason", *(["sample"] if obj else [])]

    @admin.display(description="preview (sample values)")
    def sample(self, template: MessageTemplate) -> SafeString:
        subject, body = preview(template.subject, template.body)
        return format_html(
            '<div id="template-preview"><strong>{}</strong><pre style="white-space:pre-wrap">{}'
            '</pre><p class="help">Fields: {}</p></div>',
            subject,
            body,
            ", ".join(FIELDS),
        )


# -- attempts: the log --------------------------------------------------------------------------


@admin.register(OutreachAttempt)
class OutreachAttemptAdmin(ReadOnlyOutreachAdmin):
    selector = selectors.attempts_for
    # Fits a 1366-pixel screen beside the filters; the attempt's page has every field.
    list_display = ("attempt", "patient_mrn", "when", "step", "channel", "actor", "result")
    list_filter = ("status", "outcome", "channel", "step", "clinical_concern", "automated")
    search_fields = ("=patient__mrn",)
    search_help_text = "Exact MRN."
    ordering = ("-planned_at", "-id")
    fields = (
        "patient",
        "step",
        "window",
        "channel",
        "content_class",
        "template",
        "rendered_subject",
        "rendered_text",
        "status",
        "outcome",
        "blocked_reasons",
        "response",
        "next_step",
        "next_step_due",
        "clinical_concern",
        "automated",
        "actor",
        "planned_at",
        "not_before",
        "expires_at",
        "claimed_at",
        "attempted_at",
        "outcome_at",
        "provider_message_id",
        "error",
        "appointment",
    )
    readonly_fields = fields

    @admin.display(description="attempt", ordering="id")
    def attempt(self, row) -> str:
        return f"#{row.pk}"

    @admin.display(description="when", ordering="planned_at")
    def when(self, row) -> str:
        at = row.attempted_at or row.planned_at
        return timezone.localtime(at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="status / outcome")
    def result(self, row) -> str:
        parts = [row.get_status_display()]
        if row.outcome and row.outcome != "blocked_by_policy":
            parts.append(row.get_outcome_display())
        if row.blocked_reasons:
            parts.append(", ".join(row.blocked_reasons))
        if row.clinical_concern:
            parts.append("clinical concern")
        return " — ".join(parts)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(patient__mrn=term), False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "log-call/<int:patient_id>/",
                wrap(self.log_call_view),
                name="outreach_log_call",
            ),
            path(
                "send-link/<int:patient_id>/",
                wrap(self.send_link_view),
                name="outreach_send_link",
            ),
            *super().get_urls(),
        ]

    def send_link_view(self, request, patient_id: int):
        """POST only: the patient's preferences link on their preferred permitted channel."""
        if request.method != "POST" or not request.user.has_perm("consent.add_selfservicelink"):
            raise PermissionDenied
        patient = patients_for(request.user).filter(pk=patient_id).first()
        if patient is None:
            raise Http404("No such patient")
        try:
            attempt = send_preferences_link(patient, actor=request.user)
        except DomainError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                f"Preferences link planned by {attempt.get_channel_display().lower()} "
                f"(attempt #{attempt.pk}).",
            )
        return redirect("admin:patients_patient_change", patient.pk)

    def log_call_view(self, request, patient_id: int):
        if not request.user.has_perm("outreach.add_outreachattempt"):
            raise PermissionDenied
        patient = patients_for(request.user).filter(pk=patient_id).first()
        if patient is None:
            raise Http404("No such patient")
        gaps = CareGap.objects.filter(patient=patient, state__in=CALLABLE).order_by("pk")
        form = LogCallForm(
            request.POST if request.method == "POST" else None,
            gaps=gaps,
            user=request.user,
            patient=patient,
            initial={"gaps": [request.GET["gap"]] if request.GET.get("gap", "").isdigit() else []},
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                attempt = log_call(
                    patient,
                    actor=request.user,
                    outcome=data["outcome"],
                    gaps=list(data["gaps"]),
                    response=data["response"],
                    next_step=data["next_step"],
                    next_step_due=data["next_step_due"],
                    clinical_concern=data["clinical_concern"],
                    booking=form.booking(),
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                if attempt.status == "blocked":
                    messages.error(
                        request,
                        "The call may not be made now: "
                        + "; ".join(attempt.blocked_reasons)
                        + f" (recorded as attempt #{attempt.pk}).",
                    )
                else:
                    messages.success(request, f"Call logged (attempt #{attempt.pk}).")
                back = request.GET.get("gap", "")
                if back.isdigit():
                    return redirect("admin:gaps_caregap_change", int(back))
                return redirect("admin:patients_patient_change", patient.pk)
        log_access(request, [patient], action=AccessLog.Action.VIEW)
        return TemplateResponse(
            request,
            "admin/outreach/log_call.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Log a call — patient {patient.mrn}",
                "patient": patient,
                "form": form,
                "submit_label": "Log the call",
            },
        )


class LogCallForm(forms.Form):
    gaps = forms.ModelMultipleChoiceField(
        queryset=CareGap.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The gaps the call was about (all the patient's open gaps when none is ticked)",
    )
    outcome = forms.ChoiceField(choices=[("", "—"), *CALL_OUTCOMES])
    response = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Patient's response"
    )
    next_step = forms.CharField(max_length=200, required=False)
    next_step_due = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Next step due"
    )
    clinical_concern = forms.BooleanField(
        required=False, help_text="The patient raised a clinical concern: a coordinator is told now"
    )
    site = forms.ModelChoiceField(
        queryset=None, required=False, help_text="Reached and scheduled: where"
    )
    provider = forms.ModelChoiceField(queryset=None, required=False)
    starts_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        label="Appointment time",
        help_text="In the site's local time",
    )
    kind = forms.ChoiceField(choices=Appointment.Kind.choices, initial=Appointment.Kind.VISIT)

    def __init__(self, *args, gaps, user, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gaps"].queryset = gaps
        self.fields["gaps"].label_from_instance = lambda gap: (
            f"#{gap.pk} {gap.measure_code} {gap.period_end.year} ({gap.get_state_display()})"
        )
        self.fields["site"].queryset = sites_for(user).filter(
            organization_id=patient.organization_id
        )
        self.fields["provider"].queryset = providers_for(user).filter(
            organization_id=patient.organization_id, is_active=True
        )

    def clean(self):
        data = super().clean()
        if data.get("outcome") == Outcome.REACHED_SCHEDULED:
            for name in ("site", "starts_at"):
                if not data.get(name):
                    self.add_error(name, "Needed to book the appointment")
        return data

    def booking(self) -> Booking | None:
        data = self.cleaned_data
        if data["outcome"] != Outcome.REACHED_SCHEDULED:
            return None
        site = data["site"]
        local = data["starts_at"].replace(tzinfo=None)
        starts_at = local.replace(tzinfo=ZoneInfo(site.timezone))
        return Booking(
            site_id=site.pk,
            provider_id=data["provider"].pk if data["provider"] else None,
            starts_at=starts_at,
            kind=data["kind"],
        )


# -- appointments by day and site ---------------------------------------------------------------


class SiteFilter(admin.SimpleListFilter):
    title = "site"
    parameter_name = "site"

    def lookups(self, request, model_admin):
        return [(s.pk, str(s)) for s in sites_for(request.user).order_by("name")]

    def queryset(self, request, queryset):
        return queryset.filter(site_id=self.value()) if self.value() else queryset


class DayFilter(admin.SimpleListFilter):
    title = "day"
    parameter_name = "day"

    def lookups(self, request, model_admin):
        timezone.localdate()
        return [
            ("yesterday", "Yesterday"),
            ("today", "Today"),
            ("tomorrow", "Tomorrow"),
            ("week", "Next 7 days"),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        spans = {
            "yesterday": (today - dt.timedelta(1), today),
            "today": (today, today + dt.timedelta(1)),
            "tomorrow": (today + dt.timedelta(1), today + dt.timedelta(2)),
            "week": (today, today + dt.timedelta(8)),
        }
        if self.value() not in spans:
            return queryset
        first, last = spans[self.value()]
        start = dt.datetime.combine(first, dt.time(0), tzinfo=dt.UTC)
        end = dt.datetime.combine(last, dt.time(0), tzinfo=dt.UTC)
        return queryset.filter(starts_at__gte=start, starts_at__lt=end)


ACTIONS = {
    "confirm": ("Confirm", appointment_services.confirm_appointment, False),
    "complete": ("Visit completed", appointment_services.complete_appointment, False),
    "no_show": ("No-show", appointment_services.mark_no_show, False),
    "cancel": ("Cancel", appointment_services.cancel_appointment, True),
}


class AppointmentActionForm(forms.Form):
    reason = forms.CharField(
        max_length=200, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyOutreachAdmin):
    selector = selectors.appointments_for
    list_display = (
        "appointment",
        "starts_at",
        "site",
        "provider",
        "patient_mrn",
        "kind",
        "status",
        "addresses",
    )
    list_filter = (DayFilter, SiteFilter, "status", "kind")
    ordering = ("organization_id", "starts_at", "id")
    date_hierarchy = None
    fields = (
        "patient",
        "site",
        "provider",
        "starts_at",
        "duration_minutes",
        "kind",
        "status",
        "booked_by",
        "booked_at",
        "confirmed_at",
        "completed_at",
        "no_show_at",
        "cancelled_at",
    )
    readonly_fields = fields
    change_form_template = "admin/outreach/appointment/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("gaps")

    @admin.display(description="appointment", ordering="id")
    def appointment(self, row) -> str:
        return f"#{row.pk}"

    @admin.display(description="gaps")
    def addresses(self, row) -> str:
        return ", ".join(f"{g.measure_code}" for g in row.gaps.all())

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:appointment_id>/act/<str:action>/",
                wrap(self.action_view),
                name="outreach_appointment_act",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        appointment = self._require_visible(request, object_id)
        may = request.user.has_perm("outreach.change_appointment")
        extra_context = {
            **(extra_context or {}),
            "appointment": appointment,
            "actions": [(key, label) for key, (label, _, _) in ACTIONS.items()] if may else [],
            "appointment_gaps": appointment.gaps.all(),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def action_view(self, request, appointment_id: int, action: str):
        if not request.user.has_perm("outreach.change_appointment") or action not in ACTIONS:
            raise PermissionDenied
        appointment = self._require_visible(request, appointment_id)
        label, service, needs_reason = ACTIONS[action]
        form = AppointmentActionForm(request.POST if request.method == "POST" else None)
        if needs_reason:
            form.fields["reason"].required = True
        if request.method == "POST" and form.is_valid():
            try:
                service(appointment, actor=request.user, reason=form.cleaned_data["reason"])
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Appointment #{appointment.pk}: {label.lower()} — done.")
                return redirect("admin:outreach_appointment_change", appointment.pk)
        return TemplateResponse(
            request,
            "admin/carehub/form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"{label} — appointment #{appointment.pk}",
                "form": form,
                "submit_label": label,
            },
        )


# -- follow-ups, letters, waitlist ------------------------------------------------------------


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyOutreachAdmin):
    selector = selectors.follow_ups_for
    list_display = ("__str__", "patient_mrn", "kind", "received_at", "due_at", "done_at", "lag")
    list_filter = ("kind",)
    ordering = ("organization_id", "due_at", "id")
    actions = ["mark_done"]
    fields = (
        "patient",
        "kind",
        "attempt",
        "appointment",
        "source_reference",
        "received_at",
        "due_at",
        "done_at",
        "done_by",
        "lag_seconds",
        "note",
    )
    readonly_fields = fields

    @admin.display(description="lag")
    def lag(self, row) -> str:
        if row.lag_seconds is None:
            return ""
        return f"{row.lag_seconds / 3600:.1f} h"

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("outreach.change_followup"):
            actions.pop("mark_done", None)
        return actions

    @admin.action(description="Mark done (records the lag)")
    def mark_done(self, request, queryset):
        done = 0
        for follow_up in queryset.filter(done_at__isnull=True):
            try:
                complete_follow_up(follow_up, actor=request.user, note="Done from the list")
            except DomainError as error:
                self.message_domain_error(request, error)
            else:
                done += 1
        self.message_user(request, f"{done} follow-up(s) done.")


@admin.register(LetterBatch)
class LetterBatchAdmin(ScopedAdmin):
    selector = selectors.letter_batches_for
    list_display = (
        "__str__",
        "organization",
        "letter_count",
        "created_by",
        "created_at",
        "download",
    )
    fields = ("organization", "letter_count", "created_by", "created_at")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="PDF")
    def download(self, batch) -> SafeString:
        url = reverse("admin:outreach_letterbatch_pdf", args=[batch.pk])
        return format_html('<a href="{}">download</a>', url)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:batch_id>/pdf/", wrap(self.pdf_view), name="outreach_letterbatch_pdf"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = LetterBatchForm(request.POST or None, organizations=organizations_for(request.user))
        if request.method == "POST" and form.is_valid():
            try:
                batch = build_letter_batch(form.cleaned_data["organization"], actor=request.user)
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"{batch}: {batch.letter_count} letters.")
                return redirect("admin:outreach_letterbatch_changelist")
        return TemplateResponse(
            request,
            "admin/carehub/form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Print the waiting letters",
                "form": form,
                "submit_label": "Make the PDF",
            },
        )

    def pdf_view(self, request, batch_id: int):
        batch = self._require_visible(request, batch_id)
        log_access(request, [batch], action=AccessLog.Action.EXPORT)
        response = HttpResponse(bytes(batch.pdf), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="letters-{batch.pk}.pdf"'
        return response


class LetterBatchForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=None)

    def __init__(self, *args, organizations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = organizations


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyOutreachAdmin):
    selector = selectors.waitlist_for
    list_display = ("__str__", "patient_mrn", "site", "requested_at", "status", "offered_slot")
    list_filter = ("status",)
    ordering = ("organization_id", "requested_at", "id")


# -- panels on the patient and gap pages --------------------------------------------------------


def _panel(request, patient_id: int, *, gap=None) -> SafeString:
    if not request.user.has_perm("outreach.view_outreachattempt"):
        return SafeString("")
    attempts = (
        OutreachAttempt.objects.filter(patient_id=patient_id)
        .select_related("actor")
        .order_by("-planned_at", "-id")[:20]
    )
    upcoming = (
        Appointment.objects.filter(patient_id=patient_id)
        .select_related("site", "provider")
        .order_by("-starts_at")[:10]
    )
    follow_ups = FollowUp.objects.filter(patient_id=patient_id, done_at__isnull=True).order_by(
        "due_at"
    )[:10]
    return render_to_string(
        "admin/outreach/patient_panel.html",
        {
            "patient_id": patient_id,
            "gap": gap,
            "attempts": attempts,
            "appointments": upcoming,
            "follow_ups": follow_ups,
            "may_log": request.user.has_perm("outreach.add_outreachattempt"),
            "may_send_link": gap is None and request.user.has_perm("consent.add_selfservicelink"),
        },
        request=request,
    )


def patient_panel(request, patient) -> SafeString:
    return _panel(request, patient.pk)


def gap_panel(request, gap) -> SafeString:
    return _panel(request, gap.patient_id, gap=gap)


def register_patient_panel() -> None:
    from gaps.gap_admin import register_gap_panel, register_transition_route
    from patients.admin import register_patient_panel as register

    register(patient_panel)
    register_gap_panel(gap_panel)
    # "Outreach started" on the gap page goes through the contact policy and plans the contact.
    register_transition_route("record_outreach_started", start_outreach)
