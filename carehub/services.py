"""User access: roles (groups) and organization grants.

A grant is a django-guardian object permission `patients.access_organization` on one
Organization. Each grant and revoke is a history row naming the actor and the reason.

Who may change whom (issue 9): an administrator changes a user only when every organization the
user holds is one the administrator holds too, so an administrator of one client can never reach
another client through a shared user. Separation of duties: nobody grants themself a role, only
a superuser (or the platform's own commands, acting as the system user) appoints auditors, and
one person is never both Auditor and Administrator.
"""

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from guardian.models import UserObjectPermission

from carehub.errors import Conflict, DomainError, NotAllowed
from carehub.history import save_with_history, stamp
from carehub.roles import ADMINISTRATOR, AUDITOR, ROLES
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


def held_organization_ids(user) -> set[int]:
    """Organizations granted to `user`, read from the grants themselves.

    Not `organizations_for`, which answers "none" for an inactive user: a disabled user still
    holds their grants, and reactivating them must count every one of them.
    """
    return {
        int(pk)
        for pk in UserObjectPermission.objects.filter(
            user_id=user.pk,
            permission__content_type__app_label="patients",
            permission__codename="access_organization",
        ).values_list("object_pk", flat=True)
    }


def _is_platform(actor) -> bool:
    return actor.is_superuser or actor.is_system


def may_manage_user(actor, user) -> bool:
    """True when `actor` may change `user`: roles, grants, password, active flag, profile."""
    if _is_platform(actor):
        return True
    if user.is_superuser or user.is_system:
        return False
    if not actor.is_active or not actor.has_perm("carehub.change_user"):
        return False
    if user.pk is None:
        return True
    mine = set(organizations_for(actor).values_list("pk", flat=True))
    return held_organization_ids(user) <= mine


def check_may_manage_user(actor, user) -> None:
    if not may_manage_user(actor, user):
        raise NotAllowed(
            f"You may not change {user.username}: they hold organizations you do not administer"
        )


def role_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True)) if user.pk else set()


def check_roles(user, wanted: set[str], *, actor) -> None:
    """Refuse a set of roles for `user` that the actor may not give (separation of duties)."""
    unknown = sorted(set(wanted) - set(ROLES))
    if unknown:
        raise DomainError(f"Unknown role(s) {', '.join(unknown)}; roles are: {', '.join(ROLES)}")
    added = set(wanted) - role_names(user)
    if added and user.pk is not None and user.pk == actor.pk:
        raise NotAllowed("Nobody grants themself a role: ask another administrator")
    if AUDITOR in added and not _is_platform(actor):
        raise NotAllowed("Only a superuser appoints auditors")
    if {AUDITOR, ADMINISTRATOR} <= set(wanted):
        raise DomainError("One person is never both Auditor and Administrator")


@transaction.atomic
def grant_organization(user, organization: Organization, *, actor, reason: str):
    if user.is_system:
        raise DomainError("The system user acts on every organization and takes no grants")
    check_may_manage_user(actor, user)
    if not _is_platform(actor) and not organizations_for(actor).filter(pk=organization.pk).exists():
        raise NotAllowed("You can only grant organizations you have access to")
    lookup = _grant_lookup(user, organization)
    existing = UserObjectPermission.objects.filter(**lookup).first()
    if existing is not None:
        return existing
    return save_with_history(UserObjectPermission(**lookup), actor=actor, reason=reason)


@transaction.atomic
def revoke_organization(user, organization: Organization, *, actor, reason: str) -> None:
    check_may_manage_user(actor, user)
    grant = UserObjectPermission.objects.filter(**_grant_lookup(user, organization)).first()
    if grant is None:
        raise Conflict(f"{user.username} has no access to {organization.slug}")
    stamp(grant, actor=actor, reason=reason)
    grant.delete()


@transaction.atomic
def assign_role(user, role: str, *, actor, reason: str) -> None:
    if role not in ROLES:
        raise DomainError(f"Unknown role {role!r}; roles are: {', '.join(ROLES)}")
    set_roles(user, role_names(user) | {role}, actor=actor, reason=reason)


@transaction.atomic
def set_roles(user, roles, *, actor, reason: str) -> None:
    """Make `user`'s roles exactly `roles` (names), within what the actor may give."""
    wanted = set(roles)
    check_may_manage_user(actor, user)
    check_roles(user, wanted, actor=actor)
    if wanted == role_names(user):
        return
    stamp(user, actor=actor, reason=reason)
    user.groups.set(Group.objects.filter(name__in=wanted))


@transaction.atomic
def set_organizations(user, organizations, *, within, actor, reason: str) -> None:
    """Make `user`'s grants among `within` (what the actor manages) exactly `organizations`.

    Grants to organizations outside `within` are left alone: an administrator of one client
    neither sees nor changes a user's access to another client.
    """
    check_may_manage_user(actor, user)
    manageable = {org.pk: org for org in within}
    wanted = {org.pk for org in organizations}
    if wanted - manageable.keys():
        raise DomainError("You can only grant organizations you have access to")
    current = held_organization_ids(user) & manageable.keys()
    for pk in sorted(wanted - current):
        grant_organization(user, manageable[pk], actor=actor, reason=reason)
    for pk in sorted(current - wanted):
        revoke_organization(user, manageable[pk], actor=actor, reason=reason)
