from django.apps import AppConfig


class CarehubConfig(AppConfig):
    name = "carehub"
    verbose_name = "Users and access"

    def ready(self) -> None:
        from carehub import history

        history.register_access_models()
        history.refuse_untracked_writes()
