from django.db.models import QuerySet

from audit.models import AccessLog, UserActivity
from carehub.selectors import users_for
from patients.selectors import organizations_for


def access_log_for(user) -> QuerySet[AccessLog]:
    return AccessLog.objects.filter(organization__in=organizations_for(user).values("pk"))


def activity_users_for(user) -> QuerySet[UserActivity]:
    """Users whose activity an auditor may read: those granted one of the auditor's
    organizations (what they did there; activity elsewhere stays hidden)."""
    return UserActivity.objects.filter(pk__in=users_for(user).values("pk")).order_by("username")
