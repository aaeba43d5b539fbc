"""The scale dataset: a million patients with clinical data, five million care gaps and twenty
million outreach attempts.

Refuses to run with DEBUG off: it writes synthetic people into whatever database it is pointed
at. Needs PostgreSQL (COPY) and the measures' value sets (`load_valuesets`, or --valuesets).
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from carehub.history import get_system_user
from carehub.scale_seed import BATCH, seed_scale
from gaps.models import ValueSet


class Command(BaseCommand):
    help = (
        "seed_scale [--patients 1000000] [--gaps-per-patient 5] [--slug scale] "
        "[--valuesets PATH] (DEBUG only, PostgreSQL)"
    )

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=1_000_000)
        parser.add_argument(
            "--gaps-per-patient", type=int, default=5, help="care gaps per patient (0 to 7)"
        )
        parser.add_argument(
            "--attempts-per-patient",
            type=int,
            default=20,
            help="logged outreach attempts per patient (20: 20,000,000 at a million patients)",
        )
        parser.add_argument("--slug", default="scale", help="the new organization's slug")
        parser.add_argument("--valuesets", help="load these VSAC ValueSet files first")
        parser.add_argument("--year", type=int, help="measurement year (default: this year)")
        parser.add_argument(
            "--template-patients",
            type=int,
            default=500,
            help="patients imported through the FHIR importer; the rest are their clones",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(
        self,
        *args,
        patients,
        gaps_per_patient,
        attempts_per_patient,
        slug,
        valuesets,
        year,
        template_patients,
        **options,
    ):
        if not settings.DEBUG:
            raise CommandError(
                "seed_scale refuses to run with DEBUG off: it fills the database with "
                "synthetic patients"
            )
        if patients < 1 or template_patients < 1:
            raise CommandError("--patients and --template-patients must be at least 1")
        if attempts_per_patient < 0:
            raise CommandError("--attempts-per-patient must be zero or more")
        if valuesets:
            call_command("load_valuesets", valuesets, stdout=self.stdout)
        if not ValueSet.objects.exists():
            raise CommandError(
                "No value sets loaded: run load_valuesets (or pass --valuesets PATH) first; "
                "the synthetic records take their codes from them"
            )
        quiet = options["no_progress"]

        def progress(batches):
            return tqdm(
                batches,
                desc=f"patients in batches of {BATCH:,}",
                unit="batch",
                disable=quiet,
                file=self.stderr,
            )

        try:
            report = seed_scale(
                slug=slug,
                patients=patients,
                gaps_per_patient=gaps_per_patient,
                attempts_per_patient=attempts_per_patient,
                actor=get_system_user(),
                year=year,
                template_size=template_patients,
                progress=progress,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        states = ", ".join(f"{k} {v:,}" for k, v in sorted(report.by_state.items()))
        self.stdout.write(
            f"Organization {report.organization_slug!r}: {report.patients:,} patients, "
            f"{report.records:,} clinical records, {report.codings:,} codings, "
            f"{report.gaps:,} care gaps ({states}), {report.sources:,} gap sources, "
            f"{report.attempts:,} outreach attempts, in {report.seconds:,.0f} s."
        )
