"""What the audit app grants (carehub.roles applies these with every migrate)."""

from carehub import roles

GRANTS = {
    roles.AUDITOR: {
        "audit.accesslog": {"view"},
        "audit.patienttimeline": {"view"},
        "audit.useractivity": {"view"},
        "audit.seal": {"view"},
    },
}


def extend_roles() -> None:
    for role, grants in GRANTS.items():
        roles.ROLE_PERMISSIONS[role].update(grants)
