"""What the metrics app grants (carehub.roles applies these with every migrate)."""

from carehub import roles

GRANTS = {roles.SUPERVISOR: {"metrics.dashboard": {"view"}}}


def extend_roles() -> None:
    for role, grants in GRANTS.items():
        roles.ROLE_PERMISSIONS[role].update(grants)
