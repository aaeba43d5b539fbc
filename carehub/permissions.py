from rest_framework import permissions

from carehub.errors import NotAllowed
from patients.selectors import organizations_for


class ModelPermissions(permissions.DjangoModelPermissions):
    """DRF's model permissions, with reads requiring the role's `view` permission too."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


def may_access_organization(actor, organization_id: int) -> bool:
    """True when `actor` may touch records of this organization.

    The system user (background work) acts for every organization; it is inactive, so the
    organization selector, which answers "none" for inactive users, would shut it out.
    """
    if actor is None:
        return False
    if actor.is_system:
        return True
    return organizations_for(actor).filter(pk=organization_id).exists()


def require_organization_access(actor, organization_id: int, *, what: str) -> None:
    """Services call this before touching a record: the admin and API scope their reads, and the
    service refuses too, so a caller that forgets the scope still cannot reach another client."""
    if not may_access_organization(actor, organization_id):
        raise NotAllowed(f"You have no access to the organization of {what}")
