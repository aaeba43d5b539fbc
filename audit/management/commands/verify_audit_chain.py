"""Check every history and access-log row against the hash chain; exit 1 on any difference."""

from django.core.management.base import BaseCommand, CommandError

from audit import sealing


class Command(BaseCommand):
    help = (
        "Report every audit row changed, removed or inserted since it was sealed, and any "
        "altered or broken seal. Exit status 1 when anything is found."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seal-first",
            action="store_true",
            help="Seal the settled new rows before checking (what the schedule does).",
        )

    def handle(self, *args, seal_first: bool = False, **options):
        if seal_first:
            sealed = sealing.seal_new_rows()
            self.stdout.write(f"Sealed {sum(s.row_count for s in sealed)} new rows.")
        findings, heads = sealing.verify_chain()
        for table, digest in sorted(heads.items()):
            self.stdout.write(f"{table}: latest digest {digest}")
        for finding in findings:
            self.stdout.write(str(finding))
        if findings:
            raise CommandError(f"{len(findings)} difference(s) from the sealed audit chain")
        self.stdout.write(self.style.SUCCESS(f"{len(heads)} sealed tables match their seals."))
