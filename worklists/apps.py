from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WorklistsConfig(AppConfig):
    name = "worklists"
    verbose_name = "Worklists"

    def ready(self) -> None:
        from worklists import handlers, schedule

        # Gaps and outreach publish; worklists listens (they never import it).
        handlers.connect()
        post_migrate.connect(schedule.ensure_schedules, sender=self)
