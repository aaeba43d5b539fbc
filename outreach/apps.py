from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OutreachConfig(AppConfig):
    name = "outreach"
    verbose_name = "Outreach and appointments"

    def ready(self) -> None:
        from outreach import schedule

        # The outreach schedules exist exactly once after every migrate (idempotent).
        post_migrate.connect(schedule.sync_after_migrate, sender=self)

        from outreach.admin import register_patient_panel

        register_patient_panel()
