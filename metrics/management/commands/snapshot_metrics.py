"""Take the metrics snapshot now, or recompute the events of past days."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from metrics import snapshots


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from error


class Command(BaseCommand):
    help = (
        "Take today's metrics snapshot (standing counts now, yesterday's events), or with "
        "--events-from/--events-to recompute the event counts of past days from history."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events-from", type=_day)
        parser.add_argument("--events-to", type=_day)

    def handle(self, *args, events_from=None, events_to=None, **options):
        if events_from or events_to:
            if not (events_from and events_to) or events_from > events_to:
                raise CommandError("Give --events-from and --events-to, in that order")
            day = events_from
            while day <= events_to:
                written = snapshots.snapshot_events(day)
                self.stdout.write(f"{day}: {written}")
                day += dt.timedelta(days=1)
            return
        written = snapshots.take_snapshot()
        self.stdout.write(f"Snapshot taken: {written}")
