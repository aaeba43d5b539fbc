"""Writing the PHI access log. Every screen, endpoint or export that shows PHI calls log_access."""

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.http import HttpRequest

from audit.models import AccessLog
from audit.relations import patient_ids_by_record

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

    Records are rows with an `organization_id` (patients and everything below them). Each row
    also names the patients behind the records (a gap read is a read of its patient). Reads
    that showed nothing are not logged.
    """
    records = list(records)
    patient_of = patient_ids_by_record(records)
    ids_by_org: dict[int, list] = defaultdict(list)
    patients_by_org: dict[int, dict[int, None]] = defaultdict(dict)  # ordered, without repeats
    label = ""
    for record in records:
        label = record._meta.label_lower
        ids_by_org[record.organization_id].append(record.pk)
        patient_id = patient_of.get((label, record.pk))
        if patient_id is not None:
            patients_by_org[record.organization_id][patient_id] = None
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
            patient_ids=list(patients_by_org[organization_id])[:MAX_IDS_PER_ROW],
            query=query,
            path=request.path[:500],
            client_address=address,
        )
        for organization_id, ids in ids_by_org.items()
    ]
