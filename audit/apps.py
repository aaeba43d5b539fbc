from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        from simple_history.signals import post_create_historical_record

        from audit import immutability, origins, schedule
        from audit.roles import extend_roles
        from carehub.roles import sync_role_permissions

        extend_roles()
        from audit.admin import register_patient_panel

        register_patient_panel()

        post_create_historical_record.connect(
            origins.record_origin, dispatch_uid="carehub_history_origin"
        )

        # Roles: after every app's permissions exist, so each app can extend carehub.roles.
        post_migrate.connect(sync_role_permissions, dispatch_uid="carehub_sync_roles")
        post_migrate.connect(
            immutability.protect_history_tables, dispatch_uid="carehub_protect_history"
        )
        post_migrate.connect(
            schedule.sync_after_migrate, sender=self, dispatch_uid="carehub_audit_schedule"
        )
