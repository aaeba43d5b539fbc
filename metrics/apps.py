from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from metrics import roles, schedule

        roles.extend_roles()
        post_migrate.connect(
            schedule.sync_after_migrate, sender=self, dispatch_uid="carehub_metrics_schedule"
        )
