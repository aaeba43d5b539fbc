from django.contrib import admin
from django.db import connection

from audit.models import AccessLog
from audit.selectors import access_log_for
from carehub.admin_base import CappedCountPaginator
from patients.admin import OrganizationFilter


@admin.register(AccessLog)
class AccessLogAdmin(admin.ModelAdmin):
    """Auditors browse who read which PHI. Nobody, not even a superuser, edits it here."""

    list_display = (
        "at",
        "user",
        "action",
        "channel",
        "model",
        "object_count",
        "shown_ids",
        "client_address",
        "organization",
    )
    list_filter = ("action", "channel", "model", OrganizationFilter)
    list_select_related = ("user", "organization")
    search_fields = ("=user__username",)
    search_help_text = "A username, or a record id to find every read of that record."
    date_hierarchy = None
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 100

    def get_queryset(self, request):
        return access_log_for(request.user)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            if connection.vendor == "postgresql":
                return queryset.filter(object_ids__contains=[int(term)]), False
            # SQLite has no JSON containment; match the id as a whole element of the list.
            return queryset.filter(object_ids__regex=rf"[\[ ,]{term}[,\]]"), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="ids")
    def shown_ids(self, entry: AccessLog) -> str:
        ids = entry.object_ids[:10]
        more = "…" if entry.object_count > len(ids) else ""
        return ", ".join(str(pk) for pk in ids) + more

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
