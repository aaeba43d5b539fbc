from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from audit import immutability
        from carehub.roles import sync_role_permissions

        # Roles: after every app's permissions exist, so each app can extend carehub.roles.
        post_migrate.connect(sync_role_permissions, dispatch_uid="carehub_sync_roles")
        post_migrate.connect(
            immutability.protect_history_tables, dispatch_uid="carehub_protect_history"
        )
