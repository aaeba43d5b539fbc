"""The five roles and their least-privilege model permissions.

The groups are created by a migration; their permissions are (re)applied after every migrate from
ROLE_PERMISSIONS, so an app added later grants its permissions by extending this table. Nobody is
given `delete`: nothing in CareHub is deleted, wrong data is corrected by a new change.
Which organizations a user sees is a separate grant (see carehub.services.grant_organization).
"""

AGENT = "Agent"
SUPERVISOR = "Supervisor"
COORDINATOR = "Care coordinator"
AUDITOR = "Auditor"
ADMINISTRATOR = "Administrator"
ROLES = (AGENT, SUPERVISOR, COORDINATOR, AUDITOR, ADMINISTRATOR)

_ORG_REFERENCE = {
    "patients.organization": {"view"},
    "patients.site": {"view"},
    "patients.provider": {"view"},
    "patients.payerprogram": {"view"},
}
# Measures, value sets and the engine's output: read-only everywhere; loading and evaluating
# run as commands, tasks or the import API.
_GAPS_READ = {
    "gaps.measure": {"view"},
    "gaps.valueset": {"view"},
    "gaps.measureresult": {"view"},
    "gaps.caregap": {"view"},
    "gaps.gapevidence": {"view"},
    "gaps.gapsource": {"view"},
}
# Working gaps: transitions (change), evidence (add); deciding on flagged gaps (review).
_GAPS_WORK = {
    **_GAPS_READ,
    "gaps.caregap": {"view", "change"},
    "gaps.gapevidence": {"view", "add"},
}
_GAPS_DECIDE = {**_GAPS_WORK, "gaps.caregap": {"view", "change", "review", "add"}}
_GAP_LISTS = {"gaps.gaplistimport": {"view", "add"}}
_RUNS_READ = {"gaps.evaluationrun": {"view"}, "patients.importrun": {"view"}}
# Consents and preferences change only through consent.services (the staff forms check these).
_CONSENT_READ = {
    "consent.consent": {"view"},
    "consent.contactpreference": {"view"},
    "consent.blockedsend": {"view"},
    "consent.inboundsms": {"view"},
    "consent.selfservicelink": {"view"},
}
_CONSENT_WORK = {
    **_CONSENT_READ,
    "consent.consent": {"view", "add"},
    "consent.contactpreference": {"view", "change"},
    "consent.selfservicelink": {"view", "add"},
}

# Worklists: everyone who works sees the items; what one may take is the queue's object grant
# (team membership); supervisors assign and manage teams.
_WORK_READ = {
    "worklists.workitem": {"view"},
    "worklists.queue": {"view"},
    "worklists.team": {"view"},
}
_WORK_SUPERVISE = {
    "worklists.workitem": {"view", "assign"},
    "worklists.queue": {"view"},
    "worklists.team": {"view", "change"},
}

# Outreach: the attempt log and appointments; attempts are added by logging a call, appointments
# change through their actions, follow-ups are marked done. Templates are the leads' to write.
_OUTREACH_READ = {
    "outreach.messagetemplate": {"view"},
    "outreach.outreachattempt": {"view"},
    "outreach.appointment": {"view"},
    "outreach.followup": {"view"},
    "outreach.waitlistentry": {"view"},
    "outreach.letterbatch": {"view"},
}
_OUTREACH_WORK = {
    **_OUTREACH_READ,
    "outreach.outreachattempt": {"view", "add"},
    "outreach.appointment": {"view", "change"},
    "outreach.followup": {"view", "change"},
    "outreach.letterbatch": {"view", "add"},
}
_OUTREACH_LEAD = {**_OUTREACH_WORK, "outreach.messagetemplate": {"view", "add", "change"}}

ROLE_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    AGENT: {
        **_ORG_REFERENCE,
        **_GAPS_WORK,
        **_CONSENT_WORK,
        **_WORK_READ,
        **_OUTREACH_WORK,
        "patients.patient": {"view", "change"},
    },
    SUPERVISOR: {
        **_WORK_SUPERVISE,
        **_ORG_REFERENCE,
        **_GAPS_DECIDE,
        **_GAP_LISTS,
        **_RUNS_READ,
        **_CONSENT_WORK,
        **_OUTREACH_LEAD,
        "patients.importrun": {"view", "add"},
        "patients.patient": {"view", "change", "add", "export"},
    },
    COORDINATOR: {
        **_WORK_READ,
        **_ORG_REFERENCE,
        **_GAPS_DECIDE,
        **_CONSENT_WORK,
        **_OUTREACH_LEAD,
        "patients.patient": {"view", "change"},
    },
    AUDITOR: {
        **_WORK_READ,
        **_ORG_REFERENCE,
        **_GAPS_READ,
        "gaps.gaplistimport": {"view"},
        **_RUNS_READ,
        **_CONSENT_READ,
        **_OUTREACH_READ,
        "patients.patient": {"view", "export"},
        "audit.accesslog": {"view"},
        "carehub.user": {"view"},
        "auth.group": {"view"},
    },
    ADMINISTRATOR: {
        **_GAPS_READ,
        **_GAP_LISTS,
        **_RUNS_READ,
        **_CONSENT_WORK,
        "patients.importrun": {"view", "add"},
        "patients.organization": {"view", "change"},
        "patients.site": {"view", "change", "add"},
        "patients.provider": {"view", "change", "add"},
        "patients.payerprogram": {"view", "change", "add"},
        "patients.patient": {"view", "change", "add", "export"},
        "carehub.user": {"view", "change", "add"},
        "auth.group": {"view"},
    },
}


def sync_role_permissions(apps=None, **_signal_kwargs) -> None:
    """Make each role's permissions exactly those in ROLE_PERMISSIONS (idempotent)."""
    if apps is None:
        from django.apps import apps as global_apps

        apps = global_apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for label, actions in grants.items():
            app_label, model_name = label.split(".")
            codenames = [f"{action}_{model_name}" for action in actions]
            found = list(
                Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
            )
            if len(found) != len(codenames):
                # The model's app is not migrated yet; the next post_migrate completes it.
                continue
            wanted.extend(found)
        group.permissions.set(wanted)
