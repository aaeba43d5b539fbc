"""Worklists in admin: the work item list (supervisors assign from it), queues, teams, and the
agent's screens (My work, get next, the case page) and the supervisor's queue overview, wired in
as the work item admin's URLs. The admin index opens on My work (templates/admin/worklists)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from carehub.admin_base import PhiAdminMixin, ScopedAdmin
from carehub.errors import DomainError
from patients.selectors import patients_for, search_patients
from worklists import selectors, services, views
from worklists.models import ItemKind, PatientRisk, Queue, Team, WorkItem
from worklists.queues import add_team_member, remove_team_member
from worklists.risk import explain


class ScopedQueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            (str(q.pk), f"{q.organization.name}: {q.name}")
            for q in selectors.queues_for(request.user)
        ]

    def queryset(self, request, queryset):
        return queryset.filter(queue_id=self.value()) if self.value() else queryset


class StateFilter(admin.SimpleListFilter):
    """Open work unless asked otherwise: the list is a worklist, not an archive."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("all", "All"), *WorkItem.State.choices[1:]]

    def choices(self, changelist):
        value = self.value() or WorkItem.State.OPEN
        yield {
            "selected": value == WorkItem.State.OPEN,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Open",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or WorkItem.State.OPEN
        return queryset if value == "all" else queryset.filter(state=value)


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [("mine", "Mine"), ("unassigned", "Unassigned"), ("assigned", "Someone")]

    def queryset(self, request, queryset):
        return {
            "mine": lambda: queryset.filter(owner=request.user),
            "unassigned": lambda: queryset.filter(owner__isnull=True),
            "assigned": lambda: queryset.filter(owner__isnull=False),
        }.get(self.value(), lambda: queryset)()


class AgingFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [(label, label) for label, _, _ in selectors.AGING_BUCKETS]

    def queryset(self, request, queryset):
        if self.value() not in {label for label, _, _ in selectors.AGING_BUCKETS}:
            return queryset
        return queryset.filter(selectors.aging_filter(self.value(), today=timezone.localdate()))


class SlaFilter(admin.SimpleListFilter):
    title = "service level"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return [("breached", "Breached"), ("ok", "Within")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "breached":
            return queryset.filter(sla_due_at__lt=now)
        if self.value() == "ok":
            return queryset.filter(sla_due_at__gte=now)
        return queryset


@admin.register(WorkItem)
class WorkItemAdmin(PhiAdminMixin, ScopedAdmin):
    selector = selectors.work_items_for
    list_display = (
        "item",
        "patient_link",
        "kind_label",
        "tier",
        "due",
        "sla",
        "owner",
        "age",
        "reason",
    )
    list_display_links = ("item",)
    list_filter = (StateFilter, ScopedQueueFilter, "kind", OwnerFilter, AgingFilter, SlaFilter)
    search_fields = ("=patient__mrn",)
    search_help_text = "Name prefix (“smi”, “smith, jo”), exact MRN or member id."
    ordering = ("risk_rank", "due_date", "-measure_weight", "id")
    actions = ("assign_selected", "return_to_queue")
    fields = (
        "kind",
        "queue",
        "patient",
        "gap",
        "state",
        "reason",
        "resolution",
        "owner",
        "assignment",
        "claimed_at",
        "last_activity_at",
        "risk_rank",
        "due_date",
        "measure_weight",
        "not_before",
        "sla_due_at",
        "created_at",
        "closed_at",
        "closed_by",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # work items are opened by the services that cause them

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="item", ordering="id")
    def item(self, item: WorkItem) -> str:
        return f"#{item.pk}"

    @admin.display(description="patient")
    def patient_link(self, item: WorkItem):
        url = reverse("admin:worklists_case", args=[item.patient_id])
        return format_html(
            '<a href="{}">{}</a><br><span class="mrn">{}</span>',
            url,
            item.patient.display_name,
            item.patient.mrn,
        )

    @admin.display(description="work", ordering="kind")
    def kind_label(self, item: WorkItem) -> str:
        measure = f" ({item.gap.measure_code})" if item.gap_id else ""
        return f"{item.get_kind_display()}{measure}"

    @admin.display(description="due", ordering="due_date")
    def due(self, item: WorkItem) -> str:
        return item.due_date.isoformat()

    @admin.display(description="tier", ordering="risk_rank")
    def tier(self, item: WorkItem) -> str:
        return item.risk_tier

    @admin.display(description="SLA", ordering="sla_due_at")
    def sla(self, item: WorkItem):
        if item.is_open and item.sla_due_at < timezone.now():
            return format_html('<span class="sla-breached">breached</span>')
        return item.sla_due_at.strftime("%m-%d %H:%M")

    @admin.display(description="age", ordering="created_at")
    def age(self, item: WorkItem) -> str:
        return f"{(timezone.localdate() - timezone.localdate(item.created_at)).days} d"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        patients = search_patients(patients_for(request.user), term).values("pk")
        return queryset.filter(patient__in=patients), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("worklists.assign_workitem"):
            actions.pop("assign_selected", None)
            actions.pop("return_to_queue", None)
        return actions

    @admin.action(description="Assign selected items to…")
    def assign_selected(self, request, queryset):
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True)[:500])
        return redirect(f"{reverse('admin:worklists_assign')}?ids={ids}")

    @admin.action(description="Return selected items to their queue")
    def return_to_queue(self, request, queryset):
        try:
            count = services.assign_items(
                list(queryset.values_list("pk", flat=True)),
                to=None,
                actor=request.user,
                reason="Returned to the queue by a supervisor",
            )
        except DomainError as error:
            self.message_domain_error(request, error)
        else:
            self.message_user(request, f"{count} item(s) back in their queues.")

    def get_urls(self):
        wrap = self.admin_site.admin_view

        def bind(view):
            return wrap(lambda request, *args, **kwargs: view(self, request, *args, **kwargs))

        return [
            path("my-work/", bind(views.my_work_view), name="worklists_my_work"),
            path("get-next/", bind(views.get_next_view), name="worklists_get_next"),
            path("case/<int:patient_id>/", bind(views.case_view), name="worklists_case"),
            path(
                "case/<int:patient_id>/claim/",
                bind(views.claim_case_view),
                name="worklists_case_claim",
            ),
            path(
                "case/<int:patient_id>/gap/<int:gap_id>/<str:service>/",
                bind(views.case_action_view),
                name="worklists_case_action",
            ),
            path(
                "case/<int:patient_id>/item/<int:item_id>/done/",
                bind(views.complete_item_view),
                name="worklists_case_item_done",
            ),
            path("queues/", bind(views.supervise_view), name="worklists_supervise"),
            path("assign/", wrap(self.assign_view), name="worklists_assign"),
            *super().get_urls(),
        ]

    def assign_view(self, request):
        if not request.user.has_perm("worklists.assign_workitem"):
            raise PermissionDenied
        raw = request.POST.get("ids") or request.GET.get("ids", "")
        ids = [int(part) for part in raw.split(",") if part.strip().isdigit()]
        items = list(self.get_queryset(request).filter(pk__in=ids))
        form = views.AssignForm(
            request.POST if request.method == "POST" else None,
            users=selectors.assignable_users(request.user),
        )
        if request.method == "POST" and form.is_valid():
            try:
                count = services.assign_items(
                    [item.pk for item in items],
                    to=form.cleaned_data["owner"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                who = form.cleaned_data["owner"] or "the queue"
                messages.success(request, f"{count} item(s) assigned to {who}.")
                return redirect("admin:worklists_workitem_changelist")
        return TemplateResponse(
            request,
            "admin/worklists/assign.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Assign {len(items)} work item(s)",
                "form": form,
                "items": items,
                "ids": ",".join(str(item.pk) for item in items),
                "submit_label": "Assign",
            },
        )


@admin.register(Queue)
class QueueAdmin(ScopedAdmin):
    selector = selectors.queues_for
    list_display = ("name", "organization", "role", "team", "kinds_label")
    readonly_fields = ("organization", "name", "role", "team", "kinds")
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="kinds of work")
    def kinds_label(self, queue: Queue) -> str:
        return ", ".join(ItemKind(kind).label for kind in queue.kinds)


@admin.register(Team)
class TeamAdmin(ScopedAdmin):
    selector = selectors.teams_for
    list_display = ("name", "organization", "member_names")
    readonly_fields = ("organization", "name", "member_names")
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="members")
    def member_names(self, team: Team) -> str:
        return ", ".join(member.username for member in team.members.all()) or "—"

    def get_urls(self):
        return [
            path(
                "<int:team_id>/members/",
                self.admin_site.admin_view(self.members_view),
                name="worklists_team_members",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "may_manage": request.user.has_perm("worklists.change_team"),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def members_view(self, request, team_id: int):
        """Supervisors add or remove a team member (with the reason); the service grants or
        revokes the right to work the team's queues."""
        if not request.user.has_perm("worklists.change_team"):
            raise PermissionDenied
        team = self._require_visible(request, team_id)
        users = (
            get_user_model()
            .objects.filter(pk__in=team_candidates(team), is_active=True)
            .order_by("username")
        )
        form = TeamMemberForm(request.POST if request.method == "POST" else None, users=users)
        if request.method == "POST" and form.is_valid():
            service = (
                add_team_member if form.cleaned_data["change"] == "add" else (remove_team_member)
            )
            try:
                service(
                    team,
                    form.cleaned_data["user"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"{team}: members changed.")
                return redirect("admin:worklists_team_change", team.pk)
        return TemplateResponse(
            request,
            "admin/carehub/form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Members of {team}",
                "form": form,
                "submit_label": "Save",
            },
        )


class TeamMemberForm(forms.Form):
    change = forms.ChoiceField(choices=[("add", "Add to the team"), ("remove", "Remove")])
    user = forms.ModelChoiceField(queryset=None)
    reason = forms.CharField(max_length=100, help_text="Kept in the team's history.")

    def __init__(self, *args, users, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = users


def team_candidates(team: Team):
    """Users granted the team's organization (only they may join it)."""
    from guardian.models import UserObjectPermission

    return UserObjectPermission.objects.filter(
        permission__codename="access_organization",
        permission__content_type__app_label="patients",
        object_pk=str(team.organization_id),
    ).values("user_id")


def risk_panel(request, patient) -> SafeString:
    """The patient page says the risk tier and why, and lists the patient's open work."""
    if not request.user.has_perm("worklists.view_workitem"):
        return SafeString("")
    risk = PatientRisk.objects.filter(patient_id=patient.pk).first()
    items = list(
        WorkItem.objects.open().filter(patient_id=patient.pk).select_related("owner", "gap")
    )
    return render_to_string(
        "admin/worklists/risk_panel.html",
        {
            "risk": risk,
            "lines": explain(risk) if risk else [],
            "items": items,
            "patient": patient,
        },
        request=request,
    )


def register_patient_panel() -> None:
    from patients.admin import register_patient_panel as register

    register(risk_panel)
