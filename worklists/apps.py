from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WorklistsConfig(AppConfig):
    name = "worklists"
    verbose_name = "Worklists"

    def ready(self) -> None:
        from django.contrib import admin

        from worklists import handlers, schedule
        from worklists.admin import register_patient_panel

        # Gaps and outreach publish; worklists listens (they never import it).
        handlers.connect()
        post_migrate.connect(schedule.ensure_schedules, sender=self)
        register_patient_panel()
        # Agents land on their work: the admin index opens with My work and get-next.
        admin.site.index_template = "admin/worklists/index.html"
