"""Evaluate measures for one organization and period (acts as the system user)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from carehub.errors import DomainError
from carehub.history import get_system_user
from gaps.services import evaluate_measures, parse_period
from patients.models import Organization


class Command(BaseCommand):
    help = (
        "evaluate_measures --organization SLUG --period 2025-01-01:2025-12-31 "
        "[--measure CMS130 ...] [--measure-version MP2026]"
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True)
        parser.add_argument("--period", required=True)
        parser.add_argument("--measure", action="append", dest="measures")
        parser.add_argument("--measure-version", dest="version")
        parser.add_argument("--user")

    def handle(self, *args, organization, period, measures, version, user, **options):
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
            summary = evaluate_measures(
                org,
                period_start=start,
                period_end=end,
                actor=actor,
                measures=measures,
                version=version,
            )
        except DomainError as error:
            raise CommandError(str(error)) from None
        for warning in summary.warnings:
            self.stderr.write(f"warning: {warning}")
        for name, tally in summary.run.counts.items():
            parts = ", ".join(f"{k} {v}" for k, v in tally.items())
            self.stdout.write(f"{name}: {parts}")
