from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GapsConfig(AppConfig):
    name = "gaps"
    verbose_name = "Measures and care gaps"

    def ready(self) -> None:
        from gaps import schedule

        # After every migrate: the measure catalogue rows and the nightly evaluation schedule
        # exist exactly once (both idempotent).
        post_migrate.connect(schedule.sync_after_migrate, sender=self)

        from gaps.gap_admin import register_patient_panel

        register_patient_panel()
