"""Deterministic demo data: two client organizations, their sites, providers, payer programs,
synthetic patients (Faker, fixed seed) and one demo user per role per organization.

Refuses to run with DEBUG off: demo users with a known password must never reach production.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from patients.demo import DEMO_ORGANIZATIONS, seed_demo


class Command(BaseCommand):
    help = "Create demo organizations, patients and one user per role (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--patients", type=int, default=2000, help="patients in total (default 2000)"
        )

    def handle(self, *args, patients: int, **options):
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo refuses to run with DEBUG off (demo passwords are public)"
            )
        if patients < 0:
            raise CommandError("--patients must be zero or more")
        report = seed_demo(patients=patients, password=settings.CAREHUB_DEMO_PASSWORD)
        if report.already_seeded:
            self.stdout.write("Demo data already present; nothing changed.")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created {len(DEMO_ORGANIZATIONS)} organizations, "
                    f"{report.patients} patients and {len(report.users)} demo users."
                )
            )
        self.stdout.write(f"Demo users (password {settings.CAREHUB_DEMO_PASSWORD!r}):")
        for username, role, organization in report.users:
            self.stdout.write(f"  {username:<13} {role:<17} {organization}")
