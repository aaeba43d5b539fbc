"""Queues and teams: where each kind of work goes, and who may take it.

Every organization gets the default queues the first time work is routed for it (one queue per
role and stage of the workflow, each kind in exactly one queue), each worked by a default team.
Joining a team grants django-guardian's `worklists.work_queue` on the team's queues (with a
history row naming who and why); leaving revokes it. Get-next hands out work only from queues the
user holds that permission on, inside organizations granted to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import QuerySet
from guardian.models import UserObjectPermission
from guardian.shortcuts import get_objects_for_user

from carehub.errors import DomainError, NotAllowed
from carehub.history import save_with_history, stamp
from carehub.permissions import require_organization_access
from carehub.roles import AGENT, COORDINATOR
from patients.selectors import organizations_for
from worklists.models import ItemKind, Queue, Team

WORK_PERMISSION = "worklists.work_queue"


@dataclass(frozen=True)
class QueueSpec:
    name: str
    role: str
    team: str
    kinds: tuple[str, ...]


AGENTS, COORDINATORS = "Agents", "Care coordinators"
DEFAULT_QUEUES = (
    QueueSpec("Records review", AGENT, AGENTS, (ItemKind.REVIEW_GAP,)),
    QueueSpec(
        "Outreach and scheduling",
        AGENT,
        AGENTS,
        (
            ItemKind.OUTREACH_CALL,
            ItemKind.SCHEDULE,
            ItemKind.CALL_BACK,
            ItemKind.NO_SHOW_RECOVERY,
            ItemKind.POST_PROCEDURE,
        ),
    ),
    QueueSpec(
        "Completion and closure",
        AGENT,
        AGENTS,
        (ItemKind.CONFIRM_COMPLETION, ItemKind.CONFIRM_CLOSURE),
    ),
    QueueSpec(
        "Coordinator review and escalations",
        COORDINATOR,
        COORDINATORS,
        (ItemKind.COORDINATOR_REVIEW,),
    ),
)


@transaction.atomic
def ensure_default_queues(organization, *, actor) -> dict[str, Queue]:
    """{kind: queue} for the organization, creating the default teams and queues if missing."""
    queues = list(Queue.objects.filter(organization=organization))
    routed = {kind: queue for queue in queues for kind in queue.kinds}
    if all(kind in routed for kind in ItemKind.values):
        return routed
    reason = "Default worklist queues for the organization"
    for spec in DEFAULT_QUEUES:
        if all(kind in routed for kind in spec.kinds):
            continue
        team = Team.objects.filter(organization=organization, name=spec.team).first()
        if team is None:
            team = save_with_history(
                Team(organization=organization, name=spec.team), actor=actor, reason=reason
            )
        queue = Queue.objects.filter(organization=organization, name=spec.name).first()
        missing = [kind for kind in spec.kinds if kind not in routed]
        if queue is None:
            queue = Queue(
                organization=organization, name=spec.name, role=spec.role, team=team, kinds=[]
            )
        queue.kinds = sorted({*queue.kinds, *missing})
        save_with_history(queue, actor=actor, reason=reason)
        for kind in missing:
            routed[kind] = queue
        for member in team.members.all():
            _grant_work(member, queue, actor=actor, reason=reason)
    return routed


def _work_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="worklists", codename="work_queue")


def _grant_lookup(user, queue: Queue) -> dict:
    return {
        "user": user,
        "permission": _work_permission(),
        "content_type": ContentType.objects.get_for_model(Queue),
        "object_pk": str(queue.pk),
    }


def _grant_work(user, queue: Queue, *, actor, reason: str) -> None:
    lookup = _grant_lookup(user, queue)
    if not UserObjectPermission.objects.filter(**lookup).exists():
        save_with_history(UserObjectPermission(**lookup), actor=actor, reason=reason)


def _check_manager(team: Team, actor) -> None:
    require_organization_access(actor, team.organization_id, what="this team")
    if not (actor.is_system or actor.has_perm("worklists.change_team")):
        raise NotAllowed("Only supervisors change teams")


@transaction.atomic
def add_team_member(team: Team, user, *, actor, reason: str) -> None:
    """The user joins the team and may take work from every queue of the team."""
    _check_manager(team, actor)
    if not reason.strip():
        raise DomainError("A reason is required to change a team")
    if not organizations_for(user).filter(pk=team.organization_id).exists():
        raise DomainError(f"{user.username} has no access to this team's organization")
    if not team.members.filter(pk=user.pk).exists():
        stamp(team, actor=actor, reason=reason)
        team.members.add(user)
    for queue in team.queues.all():
        _grant_work(user, queue, actor=actor, reason=reason)


@transaction.atomic
def remove_team_member(team: Team, user, *, actor, reason: str) -> None:
    _check_manager(team, actor)
    if not reason.strip():
        raise DomainError("A reason is required to change a team")
    stamp(team, actor=actor, reason=reason)
    team.members.remove(user)
    for queue in team.queues.all():
        grant = UserObjectPermission.objects.filter(**_grant_lookup(user, queue)).first()
        if grant is not None:
            stamp(grant, actor=actor, reason=reason)
            grant.delete()


def workable_queues(user) -> QuerySet[Queue]:
    """Queues the user may take work from: granted to them, in organizations granted to them."""
    if not user.is_authenticated or not user.is_active:
        return Queue.objects.none()
    scoped = Queue.objects.filter(organization__in=organizations_for(user).values("pk"))
    return get_objects_for_user(
        user, WORK_PERMISSION, klass=scoped, accept_global_perms=False, with_superuser=False
    )


def workable_queue_ids(user) -> list[int]:
    """The ids of `workable_queues(user)`, read straight from the user's two kinds of grant
    (queues to work, organizations to see): get-next runs this on every press, and guardian's
    general-purpose query builder cost more than the claim itself."""
    if not user.is_authenticated or not user.is_active:
        return []
    grants: dict[str, set[int]] = {"work_queue": set(), "access_organization": set()}
    for codename, object_pk in UserObjectPermission.objects.filter(
        user_id=user.pk,
        permission__codename__in=list(grants),
        permission__content_type__app_label__in=["worklists", "patients"],
    ).values_list("permission__codename", "object_pk"):
        grants[codename].add(int(object_pk))
    if not grants["work_queue"] or not grants["access_organization"]:
        return []
    return list(
        Queue.objects.filter(
            pk__in=grants["work_queue"], organization_id__in=grants["access_organization"]
        ).values_list("pk", flat=True)
    )


def may_work(user, queue: Queue) -> bool:
    return workable_queues(user).filter(pk=queue.pk).exists()
