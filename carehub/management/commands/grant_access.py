"""Give a user access to an organization (and roles): onboarding a new client's staff.

The same services as the admin user page (carehub.services), acting as the system user.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from carehub import roles
from carehub.errors import DomainError
from carehub.history import get_system_user
from carehub.services import assign_role, grant_organization
from patients.models import Organization

ROLE_NAMES = {role.lower().replace(" ", "-"): role for role in roles.ROLES} | {
    "coordinator": roles.COORDINATOR,
}


def role_name(text: str) -> str:
    key = text.strip().lower().replace(" ", "-").replace("_", "-")
    if key not in ROLE_NAMES:
        raise CommandError(f"Unknown role {text!r}; roles are: {', '.join(sorted(ROLE_NAMES))}")
    return ROLE_NAMES[key]


class Command(BaseCommand):
    help = "grant_access USER ORG_SLUG [--role ROLE ...] [--reason TEXT]"

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("organization", help="the organization's slug")
        parser.add_argument(
            "--role",
            action="append",
            default=[],
            help="agent, supervisor, coordinator, auditor or administrator (repeatable)",
        )
        parser.add_argument("--reason", default="Onboarding (grant_access command)")

    def handle(self, *args, username, organization, role, reason, **options):
        wanted = [role_name(text) for text in role]
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {username!r}") from None
        try:
            org = Organization.objects.get(slug=organization)
        except Organization.DoesNotExist:
            raise CommandError(f"No organization with slug {organization!r}") from None
        actor = get_system_user()
        try:
            with transaction.atomic():  # all of it or nothing
                grant_organization(user, org, actor=actor, reason=reason)
                for name in wanted:
                    assign_role(user, name, actor=actor, reason=reason)
        except DomainError as error:
            raise CommandError(str(error)) from None
        held = ", ".join(sorted(g.name for g in user.groups.all())) or "no role yet"
        self.stdout.write(self.style.SUCCESS(f"{user.username} now works for {org.slug} ({held})"))
