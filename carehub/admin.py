from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from simple_history.admin import SimpleHistoryAdmin

from carehub.admin_base import ScopedAdmin
from carehub.models import User
from carehub.selectors import users_for
from patients.selectors import organizations_for

admin.site.site_header = "CareHub"
admin.site.site_title = "CareHub"
admin.site.index_title = "Care-gap back office"


@admin.register(User)
class UserAdmin(ScopedAdmin, DjangoUserAdmin):
    selector = users_for
    list_display = ("username", "first_name", "last_name", "is_active", "roles")
    list_filter = ("is_active", "groups")
    search_fields = ("^username", "^last_name")
    readonly_fields = ("last_login", "date_joined", "organizations")
    history_list_display = ["changed_fields"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def roles(self, user: User) -> str:
        return ", ".join(group.name for group in user.groups.all())

    @admin.display(description="organizations granted")
    def organizations(self, user: User) -> str:
        return ", ".join(org.name for org in organizations_for(user)) or "none"

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or request.user.is_superuser:
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
