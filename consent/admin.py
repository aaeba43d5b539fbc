"""Consent screens in admin.

On the patient's page a panel shows, per channel, whether contact is allowed now and why not,
with links to the staff forms: record a preference change the patient asked for (reason
required), record a consent (method required, evidence required for TCPA), create a self-service
link, and the full consent and preference history for auditors. The forms call consent.services;
the lists are read-only (changes go through the services, never through a model form).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AccessLog
from audit.services import log_access
from carehub.admin_base import PhiAdminMixin, ScopedAdmin
from carehub.errors import DomainError
from consent import selectors, services
from consent.forms import ConsentForm, StaffPreferenceForm
from consent.links import create_self_service_link, revoke_self_service_link
from consent.models import (
    BlockedSend,
    ChangePath,
    Channel,
    Consent,
    ContactPreference,
    ContentClass,
    InboundSms,
    SelfServiceLink,
)
from consent.policy import check_all_channels
from patients.models import Patient
from patients.selectors import patients_for


class ReadOnlyScopedAdmin(PhiAdminMixin, ScopedAdmin):
    """Rows written only by consent.services; admin lists and shows them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="patient (MRN)")
    def patient_mrn(self, row) -> SafeString:
        url = reverse("admin:patients_patient_change", args=[row.patient_id])
        return format_html('<a href="{}">{}</a>', url, row.patient.mrn)


@admin.register(Consent)
class ConsentAdmin(ReadOnlyScopedAdmin):
    selector = selectors.consents_for
    list_display = (
        "id",
        "patient_mrn",
        "kind",
        "status",
        "method",
        "captured_by",
        "path",
        "effective_at",
        "expires_at",
        "organization",
    )
    list_filter = ("kind", "status", "method", "captured_by", "path")
    search_fields = ("=patient__mrn",)
    search_help_text = "Exact MRN."


@admin.register(BlockedSend)
class BlockedSendAdmin(ReadOnlyScopedAdmin):
    selector = selectors.blocked_sends_for
    list_display = (
        "attempted_at",
        "patient_mrn",
        "channel",
        "content_class",
        "reasons",
        "purpose",
        "actor",
        "organization",
    )
    list_filter = ("channel", "content_class")
    search_fields = ("=patient__mrn",)


@admin.register(InboundSms)
class InboundSmsAdmin(ReadOnlyScopedAdmin):
    selector = selectors.inbound_sms_for
    list_display = ("received_at", "patient_mrn", "keyword", "from_number", "reply", "organization")
    list_filter = ("keyword",)
    search_fields = ("=patient__mrn", "=from_number")


@admin.register(SelfServiceLink)
class SelfServiceLinkAdmin(ReadOnlyScopedAdmin):
    selector = selectors.self_service_links_for
    list_display = (
        "id",
        "patient_mrn",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    search_fields = ("=patient__mrn",)
    actions = ["revoke"]

    @admin.action(description="Revoke the selected links", permissions=["revoke"])
    def revoke(self, request, queryset):
        links = list(queryset)
        for link in links:
            revoke_self_service_link(link, actor=request.user)
        self.message_user(request, f"{len(links)} link(s) revoked; they open nothing now.")

    def has_revoke_permission(self, request) -> bool:
        # Whoever may hand a patient a link may take it back.
        return request.user.has_perm("consent.add_selfservicelink")


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def channel_names(codes: list[str]) -> str:
    labels = dict(Channel.choices)
    return ", ".join(labels.get(code, code) for code in codes or [])


def weekday_names(days: list[int]) -> str:
    return ", ".join(WEEKDAYS[day] if 0 <= day < 7 else str(day) for day in days or [])


@admin.register(ContactPreference)
class ContactPreferenceAdmin(ReadOnlyScopedAdmin):
    selector = selectors.preferences_for
    list_display = (
        "patient_mrn",
        "portal_only",
        "do_not_contact",
        "opted_out",
        "channel_order",
        "path",
        "changed_at",
        "organization",
    )
    list_filter = ("portal_only", "do_not_contact", "path")
    search_fields = ("=patient__mrn",)
    search_help_text = "Exact MRN."
    # The channel and day lists are stored as codes in JSON; the page shows them as words.
    fields = (
        "patient_mrn",
        "organization",
        "do_not_contact",
        "portal_only",
        "opted_out",
        "channel_order",
        "preferred_language",
        "days",
        "contact_start",
        "contact_end",
        "timezone",
        "path",
        "changed_at",
    )
    readonly_fields = fields

    @admin.display(description="opted out of")
    def opted_out(self, preference: ContactPreference) -> str:
        return channel_names(preference.opted_out_channels) or "nothing"

    @admin.display(description="preferred channels, in order")
    def channel_order(self, preference: ContactPreference) -> str:
        return channel_names(preference.preferred_channels) or "none given"

    @admin.display(description="contact days")
    def days(self, preference: ContactPreference) -> str:
        return weekday_names(preference.contact_days) or "any day"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "patient/<int:patient_id>/change/",
                wrap(self.change_preferences_view),
                name="consent_patient_preferences",
            ),
            path(
                "patient/<int:patient_id>/consent/",
                wrap(self.record_consent_view),
                name="consent_patient_consent",
            ),
            path(
                "patient/<int:patient_id>/link/",
                wrap(self.self_service_link_view),
                name="consent_patient_link",
            ),
            path(
                "patient/<int:patient_id>/history/",
                wrap(self.contact_history_view),
                name="consent_patient_history",
            ),
            *super().get_urls(),
        ]

    # -- staff screens for one patient --------------------------------------------------------

    def _patient(self, request: HttpRequest, patient_id: int, permission: str) -> Patient:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        try:
            return patients_for(request.user).select_related("organization").get(pk=patient_id)
        except Patient.DoesNotExist:
            raise Http404("No such record") from None

    def _render(
        self,
        request,
        template: str,
        patient: Patient,
        title: str,
        *,
        action: str = AccessLog.Action.VIEW,
        **context,
    ):
        log_access(request, [patient], action=action)
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": title,
                "patient": patient,
                "patient_url": reverse("admin:patients_patient_change", args=[patient.pk]),
                **context,
            },
        )

    def change_preferences_view(self, request, patient_id: int):
        patient = self._patient(request, patient_id, "consent.change_contactpreference")
        current = ContactPreference.objects.filter(patient_id=patient.pk).first()
        form = StaffPreferenceForm(
            request.POST if request.method == "POST" else None,
            initial=StaffPreferenceForm.initial_from(current),
        )
        if request.method == "POST" and form.is_valid():
            try:
                services.update_preferences(
                    patient,
                    actor=request.user,
                    path=ChangePath.ADMIN,
                    reason=form.cleaned_data["reason"],
                    **form.preference_changes(current),
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Contact preferences saved.")
                return redirect("admin:patients_patient_change", patient.pk)
        return self._render(
            request,
            "admin/consent/patient_form.html",
            patient,
            "Change contact preferences",
            form=form,
            submit_label="Save preferences",
        )

    def record_consent_view(self, request, patient_id: int):
        patient = self._patient(request, patient_id, "consent.add_consent")
        form = ConsentForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            record = (
                services.grant_consent
                if data["action"] == ConsentForm.GRANT
                else services.revoke_consent
            )
            extra = (
                {"expires_at": data["expires_at"]} if data["action"] == ConsentForm.GRANT else {}
            )
            try:
                record(
                    patient,
                    kind=data["kind"],
                    method=data["method"],
                    actor=request.user,
                    evidence=data["evidence"],
                    proxy_name=data["proxy_name"],
                    path=ChangePath.ADMIN,
                    reason=data["reason"],
                    **extra,
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Consent recorded.")
                return redirect("admin:patients_patient_change", patient.pk)
        return self._render(
            request,
            "admin/consent/patient_form.html",
            patient,
            "Record a consent",
            form=form,
            submit_label="Record consent",
        )

    def self_service_link_view(self, request, patient_id: int):
        patient = self._patient(request, patient_id, "consent.add_selfservicelink")
        url = ""
        if request.method == "POST":
            _, token = create_self_service_link(patient, actor=request.user)
            url = request.build_absolute_uri(reverse("consent:self-service", args=[token]))
        return self._render(
            request, "admin/consent/self_service_link.html", patient, "Self-service link", url=url
        )

    def contact_history_view(self, request, patient_id: int):
        patient = self._patient(request, patient_id, "consent.view_consent")
        return self._render(
            request,
            "admin/consent/contact_history.html",
            patient,
            "Consent and preference history",
            action=AccessLog.Action.HISTORY,
            rows=selectors.contact_history(patient),
        )


def contact_panel(request: HttpRequest, patient: Patient) -> SafeString:
    """The patient page's answer to "may we contact them now, and how?"."""
    user = request.user
    if not user.has_perm("consent.view_contactpreference"):
        return SafeString("")
    now = timezone.now()
    decisions = check_all_channels(patient, at=now)
    rows = [
        {
            "channel": channel,
            "general": decisions[(channel.value, ContentClass.GENERAL)],
            "clinical": decisions[(channel.value, ContentClass.CLINICAL)],
        }
        for channel in Channel
    ]
    consents = Consent.objects.filter(patient_id=patient.pk).order_by("kind", "proxy_name")
    return render_to_string(
        "admin/consent/patient_panel.html",
        {
            "rows": rows,
            "now": now,
            "consents": [(c, c.in_force(now)) for c in consents],
            "preference": ContactPreference.objects.filter(patient_id=patient.pk).first(),
            "can_change": user.has_perm("consent.change_contactpreference"),
            "can_consent": user.has_perm("consent.add_consent"),
            "can_link": user.has_perm("consent.add_selfservicelink"),
            "can_history": user.has_perm("consent.view_consent"),
            "patient": patient,
        },
        request=request,
    )


def register_patient_panel() -> None:
    from patients.admin import register_patient_panel as register

    register(contact_panel)
