"""Writing the PHI access log. Every screen, endpoint or export that shows PHI calls log_access."""

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.http import HttpRequest

from audit.models import AccessLog

MAX_IDS_PER_ROW = 1000


def client_address(request: HttpRequest) -> str | None:
    if settings.CAREHUB_TRUSTED_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR") or None


def log_access(
    request: HttpRequest,
    records: Iterable[models.Model],
    *,
    action: str,
    channel: str = AccessLog.Channel.ADMIN,
) -> list[AccessLog]:
    """Record that `request.user` was shown `records`: one row per organization they belong to.

    Records are rows with an `organization_id` (patients and everything below them). Reads that
    showed nothing are not logged.
    """
    ids_by_org: dict[int, list] = defaultdict(list)
    label = ""
    for record in records:
        label = record._meta.label_lower
        ids_by_org[record.organization_id].append(record.pk)
    query = request.META.get("QUERY_STRING", "")[:500]
    address = client_address(request)
    return [
        AccessLog.objects.create(
            user=request.user,
            organization_id=organization_id,
            action=action,
            channel=channel,
            model=label,
            object_ids=ids[:MAX_IDS_PER_ROW],
            object_count=len(ids),
            query=query,
            path=request.path[:500],
            client_address=address,
        )
        for organization_id, ids in ids_by_org.items()
    ]
