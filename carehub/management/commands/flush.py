"""Django's flush, run as the owner when two database roles are configured: it TRUNCATEs every
table, which the application's role may not (the test suite flushes after transactional tests).
"""

from django.core.management.commands.flush import Command as DjangoFlush

from carehub import db_roles


class Command(DjangoFlush):
    def handle(self, **options):
        with db_roles.as_owner(options["database"]):
            super().handle(**options)
