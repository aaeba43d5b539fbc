"""Import FHIR R4 Bundles (files or folders) for one organization; logic in patients.fhir."""

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from carehub.history import get_system_user
from patients.clinical import ImportRun
from patients.fhir.importer import import_paths
from patients.models import Organization


class Command(BaseCommand):
    help = "Import FHIR R4 Bundles: import_fhir PATH... --organization SLUG [--partial]"

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--organization", required=True)
        parser.add_argument(
            "--partial", action="store_true", help="land good bundles and list the bad ones"
        )
        parser.add_argument("--user", help="username to record as the importer")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, paths, organization, partial, user, no_progress, **options):
        try:
            org = Organization.objects.get(slug=organization)
        except Organization.DoesNotExist:
            raise CommandError(f"No organization with slug {organization!r}") from None
        actor = get_system_user()
        if user:
            try:
                actor = get_user_model().objects.get(username=user)
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user {user!r}") from None

        def progress(items):
            # Files are read, checked and mapped one by one and written every few hundred, so
            # the bar moves with the reading; the writes show as short pauses.
            return tqdm(items, desc="files", unit="file", disable=no_progress or len(items) < 20)

        started = time.monotonic()
        try:
            run = import_paths(
                paths, organization=org, actor=actor, partial=partial, progress=progress
            )
        except FileNotFoundError as error:
            raise CommandError(str(error)) from None
        elapsed = time.monotonic() - started
        counts = run.counts
        self.stdout.write(
            f"Import run #{run.pk}: {run.status}; bundles ok {counts['bundles_ok']}, rejected "
            f"{counts['bundles_rejected']}; patients +{counts['patients_created']} "
            f"~{counts['patients_updated']}; records +{counts['records_created']} "
            f"~{counts['records_updated']} ={counts['records_unchanged']}"
        )
        resources = counts.get("resources", 0)
        self.stdout.write(
            "\n".join(
                [
                    f"  files:     {counts['bundles_ok']:,} imported, "
                    f"{counts['bundles_rejected']:,} rejected",
                    f"  patients:  {counts['patients_created']:,} created, "
                    f"{counts['patients_updated']:,} updated",
                    f"  records:   {counts['records_created']:,} created, "
                    f"{counts['records_updated']:,} updated, "
                    f"{counts['records_unchanged']:,} unchanged",
                    f"  resources: {resources:,} in {elapsed:,.1f} s "
                    f"({resources / max(elapsed, 1e-9):,.0f}/s); "
                    f"{counts['resources_skipped']:,} of types not imported",
                ]
            )
        )
        if run.report:
            self.stdout.write(run.report)
        if run.status == ImportRun.Status.FAILED:
            raise CommandError("Nothing imported: fix the files above or use --partial")
