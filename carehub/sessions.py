"""Sessions end 12 hours after sign-in whatever the activity, and when a user is disabled.

The 15-minute idle logoff is the session cookie's age (settings.SESSION_COOKIE_AGE, renewed by
every request); the 12-hour cap is a sign-in time kept in the session and checked on every
request (SessionLifetimeMiddleware).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

SIGNED_IN_AT = "carehub_signed_in_at"


def remember_sign_in(sender, request, user, **kwargs) -> None:
    """user_logged_in receiver: the session's sign-in time (epoch seconds)."""
    request.session[SIGNED_IN_AT] = int(timezone.now().timestamp())


def session_expired(session) -> bool:
    signed_in_at = session.get(SIGNED_IN_AT)
    if signed_in_at is None:
        return True  # a session from before this rule, or forged without a sign-in
    age = timezone.now().timestamp() - signed_in_at
    return age >= settings.CAREHUB_SESSION_MAX_SECONDS


def end_sessions(user) -> int:
    """Delete every live session of `user`; returns how many.

    Sessions expire after 15 idle minutes, so the live ones are few (one or two per person
    signed in) and decoding them is cheap; no per-user index of sessions is needed.
    """
    user_id = str(user.pk)
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get("_auth_user_id") == user_id
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


def end_sessions_of_disabled_user(sender, instance, **kwargs) -> None:
    """post_save receiver on the user model: disabling a user signs them out everywhere."""
    if not instance.is_active and instance.pk is not None:
        end_sessions(instance)
