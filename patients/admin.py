from collections.abc import Callable

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.safestring import SafeString

from audit.models import AccessLog
from audit.services import log_access
from carehub.admin_base import PhiAdminMixin, ReasonForm, ScopedAdmin
from carehub.errors import DomainError
from patients import selectors, services
from patients.exports import patients_csv
from patients.models import Organization, Patient, PayerProgram, Provider, Site
from patients.phones import normalize_phone

RELATED_SELECTORS = {
    Organization: selectors.organizations_for,
    Site: selectors.sites_for,
    Provider: selectors.providers_for,
    PayerProgram: selectors.payer_programs_for,
    Patient: selectors.patients_for,
}

# Sections other apps add to the patient page (consent: may we contact them now?). Imports flow
# patients <- consent/gaps, so those apps register here instead of this module importing them.
PatientPanel = Callable[[HttpRequest, Patient], SafeString]
PATIENT_PANELS: list[PatientPanel] = []


def register_patient_panel(render: PatientPanel) -> None:
    if render not in PATIENT_PANELS:
        PATIENT_PANELS.append(render)


class ScopedChoicesFilter(admin.SimpleListFilter):
    """A filter whose choices are the user's own small reference rows (organizations, sites).

    Django's RelatedFieldListFilter would list every row of the table, other clients' included.
    """

    choices_selector = None

    def lookups(self, request, model_admin):
        return [(str(row.pk), str(row)) for row in type(self).choices_selector(request.user)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.parameter_name}_id": self.value()})
        return queryset


class OrganizationFilter(ScopedChoicesFilter):
    title = "organization"
    parameter_name = "organization"
    choices_selector = selectors.organizations_for


class SiteFilter(ScopedChoicesFilter):
    title = "site"
    parameter_name = "attributed_site"
    choices_selector = selectors.sites_for


class ReferenceAdmin(ScopedAdmin):
    related_selectors = RELATED_SELECTORS
    form = ReasonForm
    list_filter = (OrganizationFilter,)


@admin.register(Organization)
class OrganizationAdmin(ReferenceAdmin):
    selector = selectors.organizations_for
    list_display = ("name", "slug", "kind", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "=slug")
    readonly_fields = ("created_at",)

    def get_readonly_fields(self, request, obj=None):
        # The slug is how imports and commands name the client; it never changes once set.
        return ("slug", "created_at") if obj else ("created_at",)


@admin.register(Site)
class SiteAdmin(ReferenceAdmin):
    selector = selectors.sites_for
    list_display = ("name", "code", "organization", "timezone")
    search_fields = ("^name", "=code")


@admin.register(Provider)
class ProviderAdmin(ReferenceAdmin):
    selector = selectors.providers_for
    list_display = ("__str__", "npi", "specialty", "site", "organization", "is_active")
    search_fields = ("^family_name", "=npi")
    autocomplete_fields = ("site",)


@admin.register(PayerProgram)
class PayerProgramAdmin(ReferenceAdmin):
    selector = selectors.payer_programs_for
    list_display = ("name", "code", "payer_name", "line_of_business", "organization")
    list_filter = (OrganizationFilter, "line_of_business")
    search_fields = ("^name", "=code")


class PatientForm(ReasonForm):
    def clean_phone(self):
        phone = self.cleaned_data.get("phone", "").strip()
        if phone and normalize_phone(phone) is None:
            raise ValidationError(
                "This is not a dialable phone number (e.g. (617) 555-0123 or +16175550123); "
                "texts and calls to it would be blocked."
            )
        return phone

    def clean(self):
        cleaned = super().clean()
        organization = cleaned.get("organization")
        if "organization" not in self.fields:  # read-only once registered
            organization = self.instance.organization
        if organization is None:  # empty or not one of the user's: the field says so
            return cleaned
        try:
            services.check_patient_links(
                organization=organization,
                site=cleaned.get("attributed_site"),
                provider=cleaned.get("attributed_provider"),
                payer_program=cleaned.get("payer_program"),
            )
        except DomainError as error:
            raise ValidationError(str(error)) from error
        return cleaned


@admin.register(Patient)
class PatientAdmin(PhiAdminMixin, ScopedAdmin):
    selector = selectors.patients_for_list
    related_selectors = RELATED_SELECTORS
    form = PatientForm
    list_display = (
        "mrn",
        "display_name",
        "birth_date",
        "sex",
        "status",
        "attributed_site",
        "payer_program",
        "organization",
    )
    list_display_links = ("mrn", "display_name")
    list_filter = ("status", OrganizationFilter, SiteFilter)
    # Used only to switch the search box and autocomplete on; get_search_results does the work.
    search_fields = ("=mrn",)
    search_help_text = "Exact MRN or member id, or a name prefix: “smi” or “smith, jo”."
    autocomplete_fields = ("attributed_site", "attributed_provider", "payer_program")
    readonly_fields = ("source_id", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("organization", "mrn", "source_id", "status")}),
        ("Person", {"fields": ("given_name", "family_name", "birth_date", "sex")}),
        (
            "Contact",
            {
                "fields": (
                    "phone",
                    "email",
                    "address_line",
                    "city",
                    "state",
                    "postal_code",
                    "preferred_language",
                    "timezone",
                )
            },
        ),
        (
            "Attribution",
            {
                "fields": (
                    "attributed_provider",
                    "attributed_site",
                    "payer_program",
                    "member_id",
                )
            },
        ),
        (None, {"fields": ("change_reason", "created_at", "updated_at")}),
    )

    actions = ["export_csv"]

    @admin.action(description="Export selected patients to CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        patients = list(
            queryset.select_related(
                "organization", "attributed_site", "attributed_provider", "payer_program"
            )
        )
        log_access(request, patients, action=AccessLog.Action.EXPORT)
        response = StreamingHttpResponse(patients_csv(patients), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="patients.csv"'
        return response

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("patients.export_patient")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET" and PATIENT_PANELS:
            patient = self._require_visible(request, object_id)
            extra_context = {
                **(extra_context or {}),
                "patient_panels": [render(request, patient) for render in PATIENT_PANELS],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="name", ordering="family_name")
    def display_name(self, patient: Patient) -> str:
        return patient.display_name

    def get_readonly_fields(self, request, obj=None):
        # A patient never moves between clients; a wrong organization is a new registration.
        if obj is not None:
            return (*self.readonly_fields, "organization")
        return self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        return selectors.search_patients(queryset, search_term), False
