"""Create a client organization from the command line (acts as the system user)."""

from django.core.management.base import BaseCommand, CommandError

from carehub.errors import DomainError
from carehub.history import get_system_user
from patients.models import Organization
from patients.services import create_organization


class Command(BaseCommand):
    help = "Create a client organization: create_organization SLUG [--name NAME]"

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--kind", default=Organization.Kind.PRACTICE)

    def handle(self, *args, slug, name, kind, **options):
        try:
            organization = create_organization(
                slug=slug,
                name=name or slug,
                kind=kind,
                actor=get_system_user(),
                reason="create_organization command",
            )
        except DomainError as error:
            raise CommandError(str(error)) from None
        except Exception as error:  # full_clean's ValidationError: a bad slug or kind
            if error.__class__.__name__ == "ValidationError":
                raise CommandError(f"Invalid organization: {error}") from None
            raise
        self.stdout.write(self.style.SUCCESS(f"Created organization {organization.slug}"))
