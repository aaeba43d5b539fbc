"""Deterministic demo data: two client organizations, their sites, providers, payer programs,
synthetic patients (Faker, fixed seed), their consents, contact preferences and care gaps, and one
demo user per role per organization. It lives in the project app because it draws on every app.

Refuses to run with DEBUG off: demo users with a known password must never reach production.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from carehub.two_factor import enrol_demo_authenticator
from consent.demo import seed_demo_contact
from gaps.demo import seed_demo_gaps
from metrics.demo import seed_demo_metrics
from outreach.demo import seed_demo_outreach
from patients.demo import DEMO_ORGANIZATIONS, seed_demo
from patients.models import Organization
from worklists.demo import seed_demo_work


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
        with transaction.atomic():
            report = seed_demo(patients=patients, password=settings.CAREHUB_DEMO_PASSWORD)
            if not report.already_seeded:
                organizations = Organization.objects.filter(
                    slug__in=[spec["slug"] for spec in DEMO_ORGANIZATIONS]
                )
                consents, preferences = seed_demo_contact(list(organizations))
                gaps = seed_demo_gaps(list(organizations))
                templates, calls, appointments = seed_demo_outreach(list(organizations))
                seed_demo_work(list(organizations))
                seed_demo_metrics()
            # Staff sign in with a second factor; `demo_otp USER` prints a demo user's code.
            for username, _role, _organization in report.users:
                enrol_demo_authenticator(get_user_model().objects.get(username=username))
        if report.already_seeded:
            self.stdout.write("Demo data already present; nothing changed.")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created {len(DEMO_ORGANIZATIONS)} organizations, "
                    f"{report.patients} patients ({consents} consents, {preferences} contact "
                    f"preferences, {gaps} care gaps, {templates} message templates, {calls} "
                    f"logged calls, {appointments} appointments) and {len(report.users)} demo "
                    "users."
                )
            )
        self.stdout.write(f"Demo users (password {settings.CAREHUB_DEMO_PASSWORD!r}):")
        for username, role, organization in report.users:
            self.stdout.write(f"  {username:<13} {role:<17} {organization}")
        self.stdout.write(
            "Second factor: `DEBUG=true .venv/bin/python manage.py demo_otp USER` prints the "
            "user's current code."
        )
