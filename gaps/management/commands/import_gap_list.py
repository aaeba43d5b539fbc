"""Import a payer or EHR gap list (CSV); the column format is in gaps/gap_lists.py and README."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from carehub.errors import DomainError
from carehub.history import get_system_user
from gaps.care_gaps import GapListImport, SourceKind
from gaps.gap_lists import import_gap_list
from patients.models import Organization


class Command(BaseCommand):
    help = (
        "import_gap_list FILE --organization SLUG --source NAME [--kind payer_list|ehr_list] "
        "[--all-or-nothing] [--user USERNAME]"
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--organization", required=True)
        parser.add_argument("--source", required=True, help="e.g. 'Blue Horizon MA'")
        parser.add_argument(
            "--kind",
            default=SourceKind.PAYER_LIST,
            choices=[SourceKind.PAYER_LIST, SourceKind.EHR_LIST],
        )
        parser.add_argument(
            "--all-or-nothing", action="store_true", help="import nothing when any row is bad"
        )
        parser.add_argument("--user", help="who imports (default: the system user)")

    def handle(self, *args, file, organization, source, kind, all_or_nothing, user, **options):
        try:
            org = Organization.objects.get(slug=organization)
        except Organization.DoesNotExist:
            raise CommandError(f"No organization with slug {organization!r}") from None
        try:
            actor = get_user_model().objects.get(username=user) if user else get_system_user()
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {user!r}") from None
        try:
            content = file.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}") from None
        try:
            record = import_gap_list(
                org,
                content=content,
                file_name=file.name,
                source_name=source,
                source_kind=kind,
                actor=actor,
                all_or_nothing=all_or_nothing,
            )
        except DomainError as error:
            raise CommandError(f"{file}: {error}") from None
        for problem in record.problems:
            self.stderr.write(f"{file}:{problem['line']}: {problem['reason']}")
        counts = ", ".join(f"{k} {v}" for k, v in record.counts.items())
        self.stdout.write(f"Import #{record.pk}: {record.get_status_display()}; {counts}")
        if record.status == GapListImport.Status.REJECTED:
            raise CommandError("Nothing imported: fix the rows above or drop --all-or-nothing")
