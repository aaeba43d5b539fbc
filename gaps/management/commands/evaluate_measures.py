"""Evaluate measures for one organization and period (acts as the system user)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from carehub.errors import DomainError
from carehub.history import get_system_user
from gaps.engine import DEFAULT_CHUNK_SIZE
from gaps.services import evaluate_measures, parse_period, start_sharded_evaluation
from patients.models import Organization


class Command(BaseCommand):
    help = (
        "evaluate_measures --organization SLUG --period 2025-01-01:2025-12-31 "
        "[--measure CMS130 ...] [--measure-version MP2026] [--chunk-size N] [--sharded]"
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True)
        parser.add_argument("--period", required=True)
        parser.add_argument("--measure", action="append", dest="measures")
        parser.add_argument("--measure-version", dest="version")
        parser.add_argument("--user")
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK_SIZE,
            help="patients evaluated per transaction (memory grows with it, not with the panel)",
        )
        parser.add_argument(
            "--sharded",
            action="store_true",
            help="put one task per chunk on the django-q2 queue for every running qcluster "
            "and return at once",
        )

    def handle(
        self, *args, organization, period, measures, version, user, chunk_size, sharded, **options
    ):
        if chunk_size < 1:
            raise CommandError(f"--chunk-size {chunk_size}: give a positive number of patients")
        try:
            org = Organization.objects.get(slug=organization)
        except Organization.DoesNotExist:
            raise CommandError(f"No organization with slug {organization!r}") from None
        try:
            actor = get_user_model().objects.get(username=user) if user else get_system_user()
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {user!r}") from None
        try:
            start, end = parse_period(period)
            if sharded:
                run = start_sharded_evaluation(
                    org,
                    period_start=start,
                    period_end=end,
                    actor=actor,
                    measures=measures,
                    version=version,
                    chunk_size=chunk_size,
                )
                self.stdout.write(
                    f"Evaluation run #{run.pk}: {run.chunks_total} chunk tasks queued; "
                    "running qcluster processes take them"
                )
                return
            summary = evaluate_measures(
                org,
                period_start=start,
                period_end=end,
                actor=actor,
                measures=measures,
                version=version,
                chunk_size=chunk_size,
            )
        except DomainError as error:
            raise CommandError(str(error)) from None
        for warning in summary.warnings:
            self.stderr.write(f"warning: {warning}")
        for name, tally in summary.run.counts.items():
            parts = ", ".join(f"{k} {v}" for k, v in tally.items())
            self.stdout.write(f"{name}: {parts}")
