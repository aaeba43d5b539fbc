"""Export measure results as the gap CSV or DEQM gaps-in-care Bundles."""

import io

from django.core.management.base import BaseCommand, CommandError

from carehub.errors import DomainError
from gaps.export import results_for, write_csv, write_deqm
from gaps.services import parse_period
from patients.models import Organization


class Command(BaseCommand):
    help = "export_gaps --organization SLUG --period START:END --format csv|deqm [--output PATH]"

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True)
        parser.add_argument("--period", required=True)
        parser.add_argument("--format", choices=["csv", "deqm"], default="csv")
        parser.add_argument("--output")

    def handle(self, *args, organization, period, format, output, **options):
        try:
            org = Organization.objects.get(slug=organization)
            start, end = parse_period(period)
        except Organization.DoesNotExist:
            raise CommandError(f"No organization with slug {organization!r}") from None
        except DomainError as error:
            raise CommandError(str(error)) from None
        results = results_for(org, start, end)
        # Without --output the export goes to the command's stdout (buffered: small exports).
        out = open(output, "w", newline="", encoding="utf-8") if output else io.StringIO()  # noqa: SIM115
        try:
            if format == "csv":
                count = write_csv(results.iterator(chunk_size=2000), out)
            else:
                count = write_deqm(results, org, out)
            if not output:
                self.stdout.write(out.getvalue(), ending="")
        finally:
            out.close()
        if output:
            self.stderr.write(
                f"Wrote {count} {'rows' if format == 'csv' else 'bundles'} to {output}"
            )
