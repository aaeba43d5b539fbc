"""Print a demo user's current sign-in code (development only).

Demo users have an authenticator device made by seed_demo; a newcomer types the code this prints
instead of scanning a QR code with a phone. Refused with DEBUG off: in production nobody reads a
code from the server.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from carehub import two_factor
from patients.demo import demo_usernames


class Command(BaseCommand):
    help = "demo_otp USER: the demo user's current second-factor code (DEBUG only)"

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        if not settings.DEBUG:
            raise CommandError("demo_otp refuses to run with DEBUG off (it reveals sign-in codes)")
        demo_users = [name for name, _role, _organization in demo_usernames()]
        if username not in demo_users:
            raise CommandError(
                f"{username!r} is not a demo user; demo users: {', '.join(demo_users)}"
            )
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError("No demo data yet: run `make run` (or manage.py seed_demo) first")
        device = two_factor.enrol_demo_authenticator(user)
        if device.last_t > two_factor.current_step(device):
            raise CommandError(
                f"{username} signed in twice within this minute; the next code comes in "
                f"{two_factor.seconds_left(device)} s"
            )
        code = two_factor.current_code(device, after_step=device.last_t)
        self.stdout.write(code)
        self.stderr.write(
            f"(valid for about {two_factor.seconds_left(device)} s; to use an authenticator app "
            f"instead, add the key {two_factor.secret_key(device)})"
        )
