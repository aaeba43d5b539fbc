"""What every CareHub admin screen shares.

- Scoped: the queryset, search, autocomplete, FK choices and history views all start from the
  model's selector, so another organization's rows are invisible (404, never 403, which would
  tell that the row exists).
- Fit for millions of rows: no COUNT(*) of the table, a count capped at a few pages.
- Audited: history is read-only (no revert, no edit); nothing can be deleted.
- PHI screens log every read to the access log.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.http import Http404, HttpRequest
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin

from audit.models import AccessLog
from audit.services import log_access
from carehub.errors import DomainError


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: `SELECT COUNT(*) FROM (... LIMIT CAP+1)`.

    A plain count of a million-row table costs seconds on every page view; an agent only needs to
    know there is "more than a few pages". A page asked for past the cap (`for_request`) is
    counted up to, so the list pages forward: counting to the cap alone made page 22 of 50-row
    pages "invalid", and the admin sent the agent back to page 1. REACH bounds how far a page
    number can make it count.
    """

    CAP = 1000
    REACH = 10_000

    def __init__(self, *args, reach: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.reach = min(reach, self.REACH)

    @classmethod
    def for_request(cls, request: HttpRequest, queryset, per_page: int, *args, **kwargs):
        try:
            page = int(request.GET.get(PAGE_VAR, 1))
        except ValueError:
            page = 1
        return cls(queryset, per_page, *args, reach=page * per_page, **kwargs)

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: self.limit + 1].count()

    @property
    def limit(self) -> int:
        return max(self.CAP, self.reach)

    @property
    def count_label(self) -> str:
        """The list's size as the page says it: "more than 1,000" where counting stopped (the
        count itself, one past the limit, would be a wrong number)."""
        if self.count > self.limit:
            return f"more than {self.limit:,}"
        return f"{self.count:,}"


class ScopedAdmin(SimpleHistoryAdmin):
    """Base for every operational model's admin. Subclasses set `selector`."""

    selector: Callable = None  # user -> QuerySet of what the user may see
    # FK target model -> selector, so choices and raw-id lookups are scoped too.
    related_selectors: dict[type[models.Model], Callable] = {}

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a COUNT per filter choice over millions of rows
    paginator = CappedCountPaginator
    list_per_page = 50

    def get_queryset(self, request: HttpRequest):
        queryset = type(self).selector(request.user)
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_paginator(self, request, queryset, per_page, *args, **kwargs):
        if issubclass(self.paginator, CappedCountPaginator):
            return self.paginator.for_request(request, queryset, per_page, *args, **kwargs)
        return super().get_paginator(request, queryset, per_page, *args, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        selector = self.related_selectors.get(db_field.related_model)
        if selector is not None:
            kwargs["queryset"] = selector(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing is deleted; wrong data is corrected by a new change

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects with "doesn't exist, perhaps deleted"; a plain 404 says the same for
        # a missing record and for another organization's, and is what API clients expect.
        raise Http404("No such record")

    def _require_visible(self, request: HttpRequest, object_id: str) -> models.Model:
        try:
            return self.get_queryset(request).get(pk=object_id)
        except (self.model.DoesNotExist, ValueError, TypeError):
            raise Http404("No such record") from None

    def history_view(self, request, object_id, extra_context=None):
        # simple-history falls back to the history table when the object is not in our queryset,
        # which would show another organization's record; refuse first.
        self._require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._require_visible(request, object_id)
        if request.method != "GET":
            raise PermissionDenied("History is read-only")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def save_model(self, request, obj, form, change):
        obj._change_reason = form.cleaned_data.get("change_reason", "")
        super().save_model(request, obj, form, change)

    def message_domain_error(self, request: HttpRequest, error: DomainError) -> None:
        self.message_user(request, str(error), level=messages.ERROR)


class ReasonForm(forms.ModelForm):
    """Admin edits of operational records state why, for the audit history."""

    change_reason = forms.CharField(
        max_length=200,
        required=True,
        help_text="Why is this being changed? Kept in the record's history.",
    )


class PhiAdminMixin:
    """Logs every list, record and history page of PHI to the access log."""

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            action = AccessLog.Action.SEARCH if changelist.query else AccessLog.Action.LIST
            log_access(request, changelist.result_list, action=action)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200:
            log_access(request, [self._require_visible(request, object_id)], action="view")
        return response

    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        log_access(request, [self._require_visible(request, object_id)], action="history")
        return response
