from django.db.models import QuerySet

from audit.models import AccessLog
from patients.selectors import organizations_for


def access_log_for(user) -> QuerySet[AccessLog]:
    return AccessLog.objects.filter(organization__in=organizations_for(user).values("pk"))
