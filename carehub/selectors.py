from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from guardian.models import UserObjectPermission

from patients.selectors import ACCESS_PERMISSION, organizations_for


def users_for(user) -> QuerySet:
    """Users an administrator may see: those granted one of the administrator's organizations."""
    User = get_user_model()
    if user.is_superuser:
        return User.objects.all()
    org_ids = [str(pk) for pk in organizations_for(user).values_list("pk", flat=True)]
    granted_user_ids = UserObjectPermission.objects.filter(
        permission__codename=ACCESS_PERMISSION.split(".")[1],
        permission__content_type__app_label="patients",
        object_pk__in=org_ids,
    ).values("user_id")
    return User.objects.filter(pk__in=granted_user_ids).prefetch_related("groups")
