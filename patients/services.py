"""Changes to organizations and patients.

Registration and edits come from admin (simple-history takes the user from the request), from
the demo seeder and, later, from imports; services take the actor explicitly.
"""

from django.db import transaction

from carehub.errors import DomainError
from carehub.history import save_with_history
from patients.models import Organization, PayerProgram, Provider, Site


def check_patient_links(
    *,
    organization: Organization | None,
    site: Site | None,
    provider: Provider | None,
    payer_program: PayerProgram | None,
) -> None:
    """A patient's site, provider and payer program belong to the patient's own organization."""
    if organization is None:
        return
    for label, linked in (
        ("attributed site", site),
        ("attributed provider", provider),
        ("payer program", payer_program),
    ):
        if linked is not None and linked.organization_id != organization.pk:
            raise DomainError(f"The {label} belongs to another organization")


@transaction.atomic
def create_organization(*, slug: str, name: str, kind: str, actor, reason: str) -> Organization:
    if Organization.objects.filter(slug=slug).exists():
        raise DomainError(f"An organization with slug {slug!r} already exists")
    organization = Organization(slug=slug, name=name, kind=kind)
    organization.full_clean()
    return save_with_history(organization, actor=actor, reason=reason)
