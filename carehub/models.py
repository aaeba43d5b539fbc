from django.conf import settings
from django.contrib.auth.models import AbstractUser
from simple_history.models import HistoricalRecords


class User(AbstractUser):
    """A person who signs in (one per person, never shared), or the named system user.

    Group membership is part of the audited state, so its changes are kept with the user's history.
    """

    history = HistoricalRecords(m2m_fields=["groups"], excluded_fields=["last_login"])

    class Meta:
        db_table = "carehub_user"

    def __str__(self) -> str:
        return self.username

    @property
    def is_system(self) -> bool:
        return self.username == settings.CAREHUB_SYSTEM_USERNAME
