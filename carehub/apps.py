from django.apps import AppConfig


class CarehubConfig(AppConfig):
    name = "carehub"
    verbose_name = "Users and access"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_save

        from carehub import history, lookups, sessions  # noqa: F401 (lookups registers __any)

        user_logged_in.connect(sessions.remember_sign_in, dispatch_uid="carehub-sign-in-time")
        post_save.connect(
            sessions.end_sessions_of_disabled_user,
            sender=get_user_model(),
            dispatch_uid="carehub-end-sessions-of-disabled-user",
        )
        history.register_access_models()
        history.refuse_untracked_writes()
