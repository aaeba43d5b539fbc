"""Remember through which door (admin, API, self-service page) each history row arrived."""

from simple_history.models import HistoricalRecords

from audit.models import HistoryOrigin


def channel_of(path: str) -> str:
    if path.startswith("/api/"):
        return HistoryOrigin.Channel.API
    if path.startswith("/preferences/"):
        return HistoryOrigin.Channel.SELF_SERVICE
    return HistoryOrigin.Channel.ADMIN


def record_origin(sender, history_instance, using=None, **_signal_kwargs) -> None:
    """post_create_historical_record: a row written while serving a request notes its door."""
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None:
        return
    HistoryOrigin.objects.using(using or "default").create(
        history_table=history_instance._meta.db_table,
        history_id=history_instance.pk,
        channel=channel_of(request.path),
    )
