from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from simple_history.admin import SimpleHistoryAdmin

from carehub.admin_base import ScopedAdmin
from carehub.models import User
from carehub.selectors import users_for
from carehub.services import set_organizations
from patients.models import Organization
from patients.selectors import organizations_for

admin.site.site_header = "CareHub"
admin.site.site_title = "CareHub"
admin.site.index_title = "Care-gap back office"


class UserAccessForm(forms.ModelForm):
    """Organizations granted and the reason for the change, on top of Django's user forms."""

    organizations = forms.ModelMultipleChoiceField(
        queryset=Organization.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Clients whose records this user may work with.",
    )
    change_reason = forms.CharField(max_length=200, help_text="Kept in the user's history.")


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
    readonly_fields = ("last_login", "date_joined")
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

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        manageable = organizations_for(request.user)
        form.base_fields["organizations"].queryset = manageable
        # A new user outside every organization the administrator manages would vanish from view.
        form.base_fields["organizations"].required = obj is None and not request.user.is_superuser
        form.base_fields["organizations"].initial = (
            list(organizations_for(obj).filter(pk__in=manageable.values("pk"))) if obj else []
        )
        return form

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        set_organizations(
            form.instance,
            form.cleaned_data["organizations"],
            within=organizations_for(request.user),
            actor=request.user,
            reason=form.cleaned_data["change_reason"],
        )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None:
            fieldsets = [*fieldsets, ("Access", {"fields": ("organizations", "change_reason")})]
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
        ] + [("Access", {"fields": ("organizations",)})]

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
