"""`{% my_work_summary %}`: the agent's counts and the get-next button on the admin index."""

from django import template

from worklists import selectors
from worklists.queues import workable_queues

register = template.Library()


@register.inclusion_tag("admin/worklists/my_work_summary.html", takes_context=True)
def my_work_summary(context) -> dict:
    request = context["request"]
    user = request.user
    if not user.has_perm("worklists.view_workitem"):
        return {"show": False}
    queue_ids = list(workable_queues(user).values_list("pk", flat=True))
    return {
        "show": True,
        "counts": selectors.my_counts(user),
        "waiting": selectors.waiting_in_my_queues(user, queue_ids),
        "works_queues": bool(queue_ids),
        "supervises": user.has_perm("worklists.assign_workitem"),
        "csrf_token": context.get("csrf_token"),
    }
