from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape, format_html
from simple_history.admin import SimpleHistoryAdmin

from carehub import roles, two_factor
from carehub.admin_base import ScopedAdmin
from carehub.errors import DomainError
from carehub.models import User
from carehub.selectors import users_for
from carehub.services import (
    check_roles,
    held_organization_ids,
    may_manage_user,
    set_organizations,
    set_roles,
)
from patients.models import Organization
from patients.selectors import organizations_for


class UserAccessForm(forms.ModelForm):
    """Organizations granted and the reason for the change, on top of Django's user forms."""

    organizations = forms.ModelMultipleChoiceField(
        queryset=Organization.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Clients whose records this user may work with.",
    )
    change_reason = forms.CharField(max_length=200, help_text="Kept in the user's history.")

    actor: User | None = None  # set by UserAdmin.get_form: who is making the change

    def clean(self):
        cleaned = super().clean()
        groups = cleaned.get("groups")
        if groups is not None and self.actor is not None:
            try:
                check_roles(self.instance, {g.name for g in groups}, actor=self.actor)
            except DomainError as error:
                self.add_error("groups", str(error))
        return cleaned


class ResetSecondFactorForm(forms.Form):
    reason = forms.CharField(
        max_length=200, help_text="Kept in the user's history, e.g. 'phone lost, ticket 4711'."
    )


class UserCreationWithAccessForm(UserAccessForm, UserCreationForm):
    pass


class UserChangeWithAccessForm(UserAccessForm, UserChangeForm):
    pass


@admin.register(User)
class UserAdmin(ScopedAdmin, DjangoUserAdmin):
    selector = users_for
    form = UserChangeWithAccessForm
    add_form = UserCreationWithAccessForm
    list_display = ("username", "first_name", "last_name", "is_active", "roles")
    list_filter = ("is_active", "groups")
    search_fields = ("^username", "^last_name")
    readonly_fields = ("last_login", "date_joined", "second_factor")
    add_fieldsets = (
        (None, {"fields": ("username", "password1", "password2")}),
        ("Access", {"fields": ("groups", "organizations", "change_reason")}),
    )
    history_list_display = ["changed_fields"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def roles(self, user: User) -> str:
        return ", ".join(group.name for group in user.groups.all())

    def get_urls(self):
        return [
            path(
                "<int:user_id>/second-factor/reset/",
                self.admin_site.admin_view(self.reset_second_factor_view),
                name="carehub_user_reset_second_factor",
            ),
            *super().get_urls(),
        ]

    def reset_second_factor_view(self, request, user_id: int):
        user = self._require_visible(request, user_id)
        if not self.has_change_permission(request, user):
            raise PermissionDenied
        form = ResetSecondFactorForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                two_factor.reset_second_factor(
                    user, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except DomainError as error:
                form.add_error(None, str(error))
            else:
                self.message_user(
                    request, f"{user.username} sets up a new authenticator at the next sign-in."
                )
                return redirect("admin:carehub_user_change", user.pk)
        return TemplateResponse(
            request,
            "admin/carehub/form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Reset the second factor of {user.username}",
                "form": form,
                "submit_label": "Reset",
            },
        )

    @admin.display(description="second factor")
    def second_factor(self, user: User):
        device = two_factor.authenticator(user)
        if device is None:
            return "not enrolled yet (set up at the next sign-in)"
        url = reverse("admin:carehub_user_reset_second_factor", args=[user.pk])
        enrolled = f" {device.created_at:%Y-%m-%d}" if device.created_at else ""
        return format_html(
            'authenticator app enrolled{} · <a href="{}">Reset (lost phone)</a>', enrolled, url
        )

    def has_change_permission(self, request, obj=None) -> bool:
        # A user who also holds another client's organization is read-only here: changing their
        # password, roles or active flag would reach that client.
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or may_manage_user(request.user, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.actor = request.user
        groups_field = form.base_fields.get("groups")
        # Only a superuser appoints auditors (check_roles refuses it too, with the reason); an
        # existing auditor's role stays listed so saving the page does not drop it.
        if (
            groups_field is not None
            and not request.user.is_superuser
            and (obj is None or not obj.groups.filter(name=roles.AUDITOR).exists())
        ):
            groups_field.queryset = groups_field.queryset.exclude(name=roles.AUDITOR)
        manageable = organizations_for(request.user)
        form.base_fields["organizations"].queryset = manageable
        # A new user outside every organization the administrator manages would vanish from view.
        form.base_fields["organizations"].required = obj is None and not request.user.is_superuser
        form.base_fields["organizations"].initial = (
            list(manageable.filter(pk__in=held_organization_ids(obj))) if obj else []
        )
        return form

    def save_related(self, request, form, formsets, change):
        # Roles go through the service (separation of duties, history with the reason), not
        # through the form's own many-to-many save.
        groups = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if groups is not None:
            set_roles(
                form.instance,
                {group.name for group in groups},
                actor=request.user,
                reason=form.cleaned_data["change_reason"],
            )
        set_organizations(
            form.instance,
            form.cleaned_data["organizations"],
            within=organizations_for(request.user),
            actor=request.user,
            reason=form.cleaned_data["change_reason"],
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # Read-only page: the grants are described, not offered as a form.
            description = escape(self._access_description(request.user, obj))
            fieldsets = [
                # No password row either: its "Reset password" button leads to a refusal.
                (name, {**opts, "fields": [f for f in opts["fields"] if f != "password"]})
                for name, opts in fieldsets
            ] + [("Access", {"fields": (), "description": description})]
        elif obj is not None:
            fieldsets = [
                *fieldsets,
                ("Access", {"fields": ("second_factor", "organizations", "change_reason")}),
            ]
        if request.user.is_superuser:
            return fieldsets
        # Only platform superusers hand out superuser status or per-user model permissions.
        return [
            (
                name,
                {
                    **opts,
                    "fields": [
                        f for f in opts["fields"] if f not in {"is_superuser", "user_permissions"}
                    ],
                },
            )
            for name, opts in fieldsets
        ]

    @staticmethod
    def _access_description(viewer, user: User) -> str:
        held = held_organization_ids(user)
        yours = [org.name for org in organizations_for(viewer).filter(pk__in=held)]
        others = len(held) - len(yours)
        text = f"Organizations: {', '.join(yours) or 'none of yours'}"
        if others:
            # Another client's name is not this administrator's to know; the count explains
            # why the page is read-only.
            text += f", and {others} you do not administer, so only their administrators or a "
            text += "superuser may change this user"
        return text + "."

    @admin.display(description="changed")
    def changed_fields(self, record) -> str:
        previous = record.prev_record
        if previous is None:
            return "created"
        return ", ".join(change.field for change in record.diff_against(previous).changes)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(SimpleHistoryAdmin, DjangoGroupAdmin):
    """Roles are defined in carehub.roles and applied on migrate; here they are only read."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
