from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and contact preferences"

    def ready(self) -> None:
        from consent.admin import register_patient_panel

        register_patient_panel()
