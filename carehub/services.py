"""User access: roles (groups) and organization grants.

A grant is a django-guardian object permission `patients.access_organization` on one
Organization. Each grant and revoke is a history row naming the actor and the reason.
"""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from guardian.models import UserObjectPermission

from carehub.errors import Conflict, DomainError
from carehub.history import save_with_history, stamp
from carehub.roles import ROLES
from patients.models import Organization
from patients.selectors import organizations_for


def _grant_lookup(user, organization: Organization) -> dict:
    return {
        "user": user,
        "permission": Permission.objects.get(
            content_type__app_label="patients", codename="access_organization"
        ),
        "content_type": ContentType.objects.get_for_model(Organization),
        "object_pk": str(organization.pk),
    }


@transaction.atomic
def grant_organization(user, organization: Organization, *, actor, reason: str):
    if user.is_system:
        raise DomainError("The system user acts on every organization and takes no grants")
    lookup = _grant_lookup(user, organization)
    existing = UserObjectPermission.objects.filter(**lookup).first()
    if existing is not None:
        return existing
    return save_with_history(UserObjectPermission(**lookup), actor=actor, reason=reason)


@transaction.atomic
def revoke_organization(user, organization: Organization, *, actor, reason: str) -> None:
    grant = UserObjectPermission.objects.filter(**_grant_lookup(user, organization)).first()
    if grant is None:
        raise Conflict(f"{user.username} has no access to {organization.slug}")
    stamp(grant, actor=actor, reason=reason)
    grant.delete()


@transaction.atomic
def assign_role(user, role: str, *, actor, reason: str) -> None:
    if role not in ROLES:
        raise DomainError(f"Unknown role {role!r}; roles are: {', '.join(ROLES)}")
    stamp(user, actor=actor, reason=reason)
    user.groups.add(Group.objects.get(name=role))


@transaction.atomic
def set_organizations(user, organizations, *, within, actor, reason: str) -> None:
    """Make `user`'s grants among `within` (what the actor manages) exactly `organizations`.

    Grants to organizations outside `within` are left alone: an administrator of one client
    neither sees nor changes a user's access to another client.
    """
    manageable = {org.pk: org for org in within}
    wanted = {org.pk for org in organizations}
    if wanted - manageable.keys():
        raise DomainError("You can only grant organizations you have access to")
    current = {org.pk for org in organizations_for(user) if org.pk in manageable}
    for pk in sorted(wanted - current):
        grant_organization(user, manageable[pk], actor=actor, reason=reason)
    for pk in sorted(current - wanted):
        revoke_organization(user, manageable[pk], actor=actor, reason=reason)
