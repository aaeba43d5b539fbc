"""Load VSAC FHIR ValueSet JSON (files, folders, Bundles)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from carehub.history import get_system_user
from gaps.valuesets import load_valuesets


class Command(BaseCommand):
    help = "Load value sets: load_valuesets PATH... [--partial]"

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--partial", action="store_true", help="load the good files")
        parser.add_argument("--user")

    def handle(self, *args, paths, partial, user, **options):
        try:
            actor = get_user_model().objects.get(username=user) if user else get_system_user()
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {user!r}") from None
        try:
            report = load_valuesets(paths, actor=actor, partial=partial)
        except FileNotFoundError as error:
            raise CommandError(str(error)) from None
        for warning in report.warnings:
            self.stderr.write(f"warning: {warning}")
        for error in report.errors:
            self.stderr.write(error)
        if report.errors and not partial:
            raise CommandError("No value set loaded: fix the files above or use --partial")
        self.stdout.write(
            f"Value sets loaded {report.loaded}, unchanged {report.unchanged}, codes {report.codes}"
        )
